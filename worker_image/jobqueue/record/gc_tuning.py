"""The garbage collector of a process that only records (``jobqueue recorder``)."""

from __future__ import annotations

import gc

# Container allocations between young-generation collections in a recorder process (CPython's default
# is 700). A batch holds thousands of short-lived objects (entry dicts, events, deltas, rows) that
# reference counting frees when the batch ends; at 700 the collector runs dozens of times per batch,
# scans them while they are alive and promotes them, which then triggers full collections.
RECORDER_GC_YOUNG_THRESHOLD = 20_000


def tune_garbage_collector() -> None:
    """For a process that only records (``jobqueue recorder``), called once it is built: move everything
    alive so far (modules, settings, connections) out of the collector's sight (gc.freeze) and collect
    the young generation less often. Measured with bench/recorder_cost.py (docs/record.md): the
    collector was about a sixth of the recorder's CPU. Not for processes that run other work too."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(RECORDER_GC_YOUNG_THRESHOLD, middle, old)
