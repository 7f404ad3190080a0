"""The garbage collector around a worker process's start (``jobqueue worker``'s cold start).

Loading a worker (redis-py, pydantic, jobqueue, the app) allocates some 90,000 container objects that
live as long as the process, and almost no garbage (about 700 unreachable objects in the benchmark app).
With the collector on, allocation counts trigger collection after collection that scan those same
objects again: about 110 young, 10 middle and one full collection, 45-65 ms of a start of about 300 ms of
CPU (docs/benchmarks.md, cold start). So the collector is off while the worker loads, and what was
loaded is then frozen (``gc.freeze``): moved to the permanent generation that no later collection scans.

Freezing before the process pool forks its first children is also what the Python documentation
recommends for forked servers: a child's collections never write to the parent's objects, so their memory
pages stay shared. The few cycles of garbage made while loading are frozen too and never freed: a bounded
cost, once per process (the ~700 objects above), not a leak that grows.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the garbage collector off; then freeze what the block loaded (only when it
    succeeded) and switch the collector back on if it was on. Call before forking children: they must
    inherit a collector that is on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
