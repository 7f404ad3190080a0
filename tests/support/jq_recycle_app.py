"""Tasks for the process pool's child-recycling tests (max_tasks_per_child, max_memory_per_child_mb)."""

from __future__ import annotations

import os

from jobqueue import App

app = App()

# What ``hold`` allocated stays referenced here, as a leak in a real task would, until the child exits.
_held: list[bytes] = []


@app.task
def pid() -> int:
    """The pid of the child process that ran it."""
    return os.getpid()


@app.task
def hold(mib: int) -> int:
    """Keep ``mib`` MiB resident in this child (every page written, so it counts in the RSS)."""
    _held.append(b"\x01" * (mib * 1024 * 1024))
    return os.getpid()
