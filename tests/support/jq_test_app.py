"""Tasks used by the integration tests; workers import it with --app jq_test_app:app.

Every task that matters for exactly-once accounting records its execution in Redis, so a test can count
runs per task id across worker processes.
"""

from __future__ import annotations

import asyncio
import os
import time
from functools import cache

import redis

from jobqueue import App, Retry, SoftTimeout, TaskContext
from jobqueue.broker.redis_io import connect

app = App()


@cache
def _redis() -> redis.Redis:
    # Through jobqueue's own connect, so the tasks reach Redis by any URL the worker was given
    # (Sentinel included).
    return connect(app.settings)


def _record(ctx: TaskContext, what: str) -> None:
    _redis().rpush(f"{app.settings.key_prefix}:test:runs", f"{ctx.id}|{what}|{os.getpid()}")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task(bind=True)
def record(ctx: TaskContext, sleep: float = 0.0) -> str:
    """Record that it ran (and which worker process ran it)."""
    _record(ctx, "start")
    if sleep:
        time.sleep(sleep)
    _record(ctx, "done")
    return ctx.id


@app.task(bind=True, max_retries=3, retry_backoff="constant", retry_base=0.05, retry_jitter=False)
def fail_times(ctx: TaskContext, failures: int) -> int:
    """Raise IOError on the first ``failures`` attempts, then succeed."""
    if ctx.retries < failures:
        raise OSError(f"attempt {ctx.attempt} fails")
    return ctx.attempt


@app.task(max_retries=5, retry_on=(OSError,), retry_base=0.05, retry_jitter=False)
def fail_with(kind: str) -> None:
    """Raise an OSError (retried) or a ValueError (not retried by retry_on)."""
    if kind == "os":
        raise OSError("disk on fire")
    raise ValueError("bad input")


@app.task(timeout=1.0)
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(timeout=1.0)
def stubborn(seconds: float) -> str:
    """Ignores its soft time limit, so only the hard limit can stop it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except SoftTimeout:
            pass
    return "survived"


@app.task(timeout=5.0, soft_timeout=0.3)
def soft(seconds: float) -> str:
    try:
        time.sleep(seconds)
    except SoftTimeout:
        return "cleaned up after soft timeout"
    return "finished"


@app.task(bind=True)
def cancellable(ctx: TaskContext, seconds: float) -> str:
    ctx.set_progress(0, message="running")  # a test waits for this: RUNNING is set at lease, before start
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ctx.is_cancelled():
            return "saw cancel"
        time.sleep(0.02)
    return "not cancelled"


@app.task
def not_json() -> object:
    return object()


class UnprintableError(Exception):
    """A user's exception whose message cannot be formatted (its __str__ raises)."""

    def __str__(self) -> str:
        raise RuntimeError("no message for you")


@app.task
def unprintable() -> None:
    raise UnprintableError


@app.task
def crash() -> None:
    os._exit(13)


@app.task
async def async_add(x: int, y: int) -> int:
    await asyncio.sleep(0.01)
    return x + y


@app.task
def add_at(x: int, y: int, at: float) -> int:
    """Sleep until the wall-clock time ``at``, then add: members of a group finish at the same moment."""
    time.sleep(max(0.0, at - time.time()))
    return x + y


@app.task(bind=True)
def record_sum(ctx: TaskContext, values: list[int]) -> int:
    """Record that it ran and return the sum of its parents' results (a chord callback)."""
    _record(ctx, "start")
    _record(ctx, "done")
    return sum(values)


@app.task
def raise_surrogate() -> None:
    """Defect 2 of issue 15: an exception message with a lone surrogate (as os.fsdecode of a bad file name
    gives), which no UTF-8 store accepts as it is."""
    raise ValueError("bad \udc80 byte")


@app.task(bind=True, max_retries=2, retry_backoff="constant", retry_base=0.05, retry_jitter=False)
def spin(ctx: TaskContext, seconds: float) -> str:
    """A busy loop that never checks ctx.is_cancelled(): only a force cancel stops it. Retried on failure,
    so a force cancel that counted as a failure would run it again."""
    _record(ctx, "start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sum(range(100))
    _record(ctx, "done")
    return "finished"


@app.task
def echo(value: object) -> object:
    """Return the argument: a payload's round trip through args, worker, result and record."""
    return value


@app.task
def unstorable_output(kind: str) -> object:
    """Output no store accepts as is, as real code produces it (``os.fsdecode`` of a bad file name)."""
    bad = "bad \udc80 byte, nul \x00"
    if kind == "raise":
        raise ValueError(bad)
    return {bad: [bad]}


@app.task
def big_result(size: int) -> str:
    return "x" * size


@app.task(bind=True, retry_on=(OSError,))
def retry_later(ctx: TaskContext, times: int, countdown: float, count: bool = True) -> int:
    """Ask to be retried (raise Retry) on the first ``times`` attempts, then return the attempt."""
    if ctx.attempt <= times:
        raise Retry(countdown=countdown, reason=f"busy on attempt {ctx.attempt}", count=count)
    return ctx.attempt


@app.task(bind=True)
def note(ctx: TaskContext, path: str, sleep: float = 0.0) -> str:
    """Append this attempt to a file: a record of runs that a Redis failover cannot lose. One short
    O_APPEND write per run, so lines of concurrent runs never interleave."""
    if sleep:
        time.sleep(sleep)
    with open(path, "a", encoding="utf-8") as out:
        out.write(f"{ctx.id} {ctx.attempt} {os.getpid()}\n")
    return ctx.id


@app.task(bind=True)
def report_progress(ctx: TaskContext, steps: int, total: int | None, hold: float = 0.0) -> int:
    """Report 1..steps in a tight loop, then (``hold`` > 0) wait up to ``hold`` seconds for the test to
    push to its release list; returns how many reports it made."""
    for done in range(1, steps + 1):
        ctx.set_progress(done, total, f"step {done}")
    if hold:
        _redis().blpop([f"{app.settings.key_prefix}:test:release:{ctx.id}"], hold)
    return steps


BAD_PROGRESS: dict[str, tuple[object, object, object]] = {
    "total_below_done": (5, 3, None),
    "negative": (-1, None, None),
    "nan": (float("nan"), 10, None),
    "huge": (10**400, None, None),
    "bool": (True, None, None),
    "long_message": (1, 2, "x" * 5000),
    "surrogate": (1, 2, "bad \ud800 name"),
    "nul": (1, 2, "a\x00b"),
}


@app.task(bind=True)
def bad_progress(ctx: TaskContext, kind: str) -> None:
    """Report a progress no one can store: the InvalidProgress it raises is the attempt's error."""
    done, total, message = BAD_PROGRESS[kind]
    ctx.set_progress(done, total, message)  # type: ignore[arg-type]


@app.task(expires=0.5)
def expiring(value: int) -> int:
    """A task that expires half a second after each enqueue unless it started by then."""
    _redis().rpush(f"{app.settings.key_prefix}:test:expiring_ran", value)
    return value


@app.periodic(cron="* * * * * *", tz="Europe/Paris", args=["tick"], name="every_second")
def every_second(label: str) -> str:
    """Fired every second by a scheduler started with --app jq_test_app:app."""
    _redis().rpush(f"{app.settings.key_prefix}:test:periodic", label)
    return label
