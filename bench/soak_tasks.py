"""Tasks of the soak (bench/soak.py); its workers run ``jobqueue worker --app bench.soak_tasks:app``.

Every task body appends ``<task id> <attempt> <process group> <time>`` to a file of its own process in
``$SOAK_RUNS_DIR`` before it does anything else. A file, not Redis: the record must outlive the Redis
crash the soak causes, and one ``write`` on an O_APPEND descriptor reaches the kernel even when the worker
is SIGKILLed the next instant, so the harness sees every run that started (duplicates are judged from
these lines).
"""

from __future__ import annotations

import os
import time
from functools import cache

from jobqueue import App, TaskContext

app = App()

# Output no store accepts as it is (NUL, a lone surrogate as os.fsdecode of a bad file name gives): the
# worker must store it escaped or end the attempt FAILED, never wedge.
POISON_TEXT = "bad \udc80 byte, nul \x00 end"
# The soak enqueues by name (as a producer without the task code does), so retry options set here would
# not apply: it passes max_retries=0 for the tasks that fail, whose reruns it would otherwise have to tell
# apart from duplicates.


@cache
def _runs_fd() -> int:
    directory = os.environ["SOAK_RUNS_DIR"]
    return os.open(os.path.join(directory, f"{os.getpid()}.runs"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)


def _record_run(ctx: TaskContext) -> None:
    os.write(_runs_fd(), f"{ctx.id} {ctx.attempt} {os.getpgrp()} {time.time():.6f}\n".encode())


@app.task(bind=True)
def work(ctx: TaskContext, n: int, seconds: float) -> dict[str, int]:
    """Normal load: a short sleep, a small result."""
    _record_run(ctx)
    time.sleep(seconds)
    return {"n": n}


@app.task(bind=True)
def poison_result(ctx: TaskContext) -> object:
    """A result with NUL and a lone surrogate, in a key and in a value."""
    _record_run(ctx)
    return {POISON_TEXT: [POISON_TEXT]}


@app.task(bind=True)
def poison_error(ctx: TaskContext) -> None:
    """An exception whose message holds NUL and a lone surrogate (defect 2 of issue 15)."""
    _record_run(ctx)
    raise ValueError(POISON_TEXT)


@app.task(bind=True)
def oversize(ctx: TaskContext, size: int) -> str:
    """A result larger than JOBQUEUE_MAX_RESULT_BYTES: the attempt must end FAILED (ResultTooLarge)."""
    _record_run(ctx)
    return "x" * size
