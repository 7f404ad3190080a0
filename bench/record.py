"""What every benchmark task does: append ``"<seq> <start time>"`` to a runs file.

Runs are recorded outside Redis on purpose: recording must not add Redis commands or Redis CPU to the
figures being measured, and must cost the same for every system. One ``os.write`` of a short line to a
file opened with O_APPEND is atomic on a local filesystem, so lines from many processes never interleave.
This module depends on the standard library only: it is imported in the peers' venv too.
"""

from __future__ import annotations

import os
import time

RUNS_FILE_ENV = "BENCH_RUNS_FILE"
# CPU milliseconds every benchmark task burns after recording its start (bench.cpu_bound); unset = none.
BURN_MS_ENV = "BENCH_BURN_MS"

_fd: dict[str, int] = {}


def record_run(seq: int) -> None:
    """Record that task ``seq`` started now (wall clock, comparable across processes)."""
    path = os.environ[RUNS_FILE_ENV]
    fd = _fd.get(path)
    if fd is None:
        # Cached per process; a forked child inherits the descriptor, which is fine with O_APPEND.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _fd[path] = fd
    os.write(fd, f"{seq} {time.time():.6f}\n".encode())
    burn_ms = os.environ.get(BURN_MS_ENV)
    if burn_ms:
        burn(float(burn_ms) / 1000)


def burn(cpu_seconds: float) -> None:
    """Spin until this thread has used ``cpu_seconds`` of CPU: the same work in every system, however
    busy the machine (wall time would shrink the work when the task is descheduled)."""
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        pass
