"""The asyncio pool alone (no Redis): jobs submitted from many threads at once, hard time limits checked in
deadline buckets, force cancel against the limit, and a task's own TimeoutError (issue 21).

Jobs reach the loop in batches (one loop wake-up per batch, see AsyncPool.submit): a job submitted while
a drain is pending or running must never be left behind. Hard limits are no longer an asyncio.timeout per
task: a task past its limit must still end TIMEOUT, and a task that raises TimeoutError itself (its own
asyncio.wait_for, a client library's timeout) is an ordinary failure, not the worker's time limit.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from pool_outcomes import Outcomes

from jobqueue import App
from jobqueue.broker.leases import Job, OutcomeKind
from jobqueue.worker.async_pool import DEADLINE_TICK, AsyncPool
from jobqueue.worker.progress import LazyReporter, ProgressReporter

app = App()


@app.task
async def quick(n: int) -> int:
    return n


@app.task
async def sleeper(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke"


@app.task
async def own_timeout() -> None:
    await asyncio.wait_for(asyncio.sleep(10), timeout=0.01)


@app.task
def blocking(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


def _job(task_id: str, name: str, args: str = "[]", timeout: float | None = None) -> Job:
    return Job(task_id, 1, name, args, "{}", "default", "normal", timeout, None, 0, 0, None)


@pytest.fixture
def pool() -> Iterator[tuple[AsyncPool, Outcomes, list[object]]]:
    outcomes = Outcomes()
    died: list[object] = []
    pool = AsyncPool(app, concurrency=1000)
    pool.start(outcomes, on_loop_died=lambda *a: died.append(a))
    yield pool, outcomes, died
    pool.stop()


def test_jobs_submitted_from_many_threads_at_once_all_run_once(
    pool: tuple[AsyncPool, Outcomes, list[object]],
) -> None:
    async_pool, outcomes, died = pool
    threads, per_thread = 8, 500

    def submit(t: int) -> None:
        for n in range(per_thread):
            async_pool.submit(_job(f"t{t}-{n}", "quick", f"[{n}]"))
            if n % 50 == 0:
                time.sleep(0.0005)  # let drains run in between, so submissions race them

    workers = [threading.Thread(target=submit, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    ids = [f"t{t}-{n}" for t in range(threads) for n in range(per_thread)]
    got = outcomes.wait(*ids)
    assert all(o.kind is OutcomeKind.SUCCESS for o in got)
    assert [o.result_json for o in got[:3]] == ["0", "1", "2"]
    assert outcomes.count == threads * per_thread  # none twice
    assert not died


def test_a_coroutine_past_its_hard_limit_ends_timeout_and_others_carry_on(
    pool: tuple[AsyncPool, Outcomes, list[object]],
) -> None:
    async_pool, outcomes, _ = pool
    started = time.monotonic()
    async_pool.submit(_job("slow", "sleeper", "[30]", timeout=0.2))
    async_pool.submit(_job("in-time", "sleeper", "[0.05]", timeout=5))
    async_pool.submit(_job("no-limit", "sleeper", "[0.3]"))
    slow, in_time, no_limit = outcomes.wait("slow", "in-time", "no-limit")
    assert slow.kind is OutcomeKind.TIMEOUT and slow.retryable
    assert "hard time limit of 0.2s exceeded" in slow.error
    # Fired by its bucket: no earlier than the limit, at most a tick (plus a busy machine's delay) late.
    assert 0.2 <= time.monotonic() - started < 0.2 + DEADLINE_TICK + 2
    assert in_time.kind is OutcomeKind.SUCCESS and in_time.result_json == '"woke"'
    assert no_limit.kind is OutcomeKind.SUCCESS
    # Nothing is kept for ended tasks (a bucket itself lives until its timer fires, empty).
    assert not any(async_pool._due.values()) and not async_pool._bucket_of and not async_pool._timed_out


@pytest.mark.parametrize("limit", [float("inf"), 1e300, -1.0])
def test_hostile_hard_limits_never_stop_the_loop(
    pool: tuple[AsyncPool, Outcomes, list[object]], limit: float
) -> None:
    """An infinite limit is none, a huge one is far away, a negative one is already past: each task ends
    with an outcome, and the next job still runs."""
    async_pool, outcomes, died = pool
    async_pool.submit(_job("odd", "sleeper", "[0.01]", timeout=limit))
    async_pool.submit(_job("next", "quick", "[7]"))
    odd, after = outcomes.wait("odd", "next")
    assert odd.kind is (OutcomeKind.TIMEOUT if limit < 0 else OutcomeKind.SUCCESS)
    assert after.result_json == "7" and not died


def test_a_plain_function_past_its_hard_limit_ends_timeout(
    pool: tuple[AsyncPool, Outcomes, list[object]],
) -> None:
    async_pool, outcomes, _ = pool
    async_pool.submit(_job("blocked", "blocking", "[1.0]", timeout=0.1))
    (blocked,) = outcomes.wait("blocked")
    assert blocked.kind is OutcomeKind.TIMEOUT


def test_a_tasks_own_timeout_error_is_a_failure_not_the_hard_limit(
    pool: tuple[AsyncPool, Outcomes, list[object]],
) -> None:
    async_pool, outcomes, _ = pool
    async_pool.submit(_job("own", "own_timeout", timeout=30))
    (own,) = outcomes.wait("own")
    assert own.kind is OutcomeKind.ERROR
    assert own.error.startswith("TimeoutError") and "hard time limit" not in own.error
    assert "wait_for" in own.traceback


def test_force_cancel_wins_over_the_hard_limit(pool: tuple[AsyncPool, Outcomes, list[object]]) -> None:
    async_pool, outcomes, _ = pool
    async_pool.submit(_job("forced", "sleeper", "[30]", timeout=0.3))
    deadline = time.monotonic() + 5
    while "forced" not in async_pool._tasks:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    async_pool.cancel("forced", force=True)
    (forced,) = outcomes.wait("forced")
    assert forced.kind is OutcomeKind.CANCELLED


class _Sink:
    """Stands in for ProgressSink: counts the reporters made, writes into a list."""

    def __init__(self) -> None:
        self.made = 0
        self.written: list[dict[str, object]] = []

    def reporter(self, job: Job) -> ProgressReporter:
        self.made += 1
        return ProgressReporter(self.written.append, 0.0)


def test_a_progress_reporter_is_made_at_the_first_report_only() -> None:
    sink = _Sink()
    quiet = LazyReporter(sink, _job("quiet", "quick"))  # type: ignore[arg-type]
    quiet.flush()
    assert sink.made == 0  # a task that never reports costs no reporter
    quiet.report({"step": 1})  # from a thread the task left running: dropped, as ProgressReporter does
    assert sink.made == 0 and not sink.written
    busy = LazyReporter(sink, _job("busy", "quick"))  # type: ignore[arg-type]
    busy.report({"step": 1})
    busy.report({"step": 2})
    busy.flush()
    assert sink.made == 1
    assert [w["step"] for w in sink.written][-1] == 2


@app.task
async def exits() -> None:
    raise SystemExit(3)


@app.task
def exits_in_a_thread() -> None:
    raise KeyboardInterrupt


def test_a_task_that_exits_fails_and_the_loop_runs_on(pool: tuple[AsyncPool, Outcomes, list[object]]) -> None:
    """sys.exit() in a task (a coroutine, or a plain function in the loop's executor) is that task's failure,
    not retried, as in the thread pool; asyncio would otherwise re-raise it out of the loop and stop it."""
    async_pool, outcomes, died = pool
    async_pool.submit(_job("exits", "exits"))
    async_pool.submit(_job("interrupted", "exits_in_a_thread"))
    exited, interrupted = outcomes.wait("exits", "interrupted")
    assert (exited.kind, exited.retryable) == (OutcomeKind.ERROR, False) and "SystemExit" in exited.error
    assert (interrupted.kind, interrupted.retryable) == (OutcomeKind.ERROR, False)
    async_pool.submit(_job("after", "quick", "[1]"))
    assert outcomes.wait("after")[0].result_json == "1" and not died


def test_a_loop_stopped_by_anything_else_takes_the_worker_down(
    pool: tuple[AsyncPool, Outcomes, list[object]],
) -> None:
    """Whatever stops the loop's thread (here a callback raising SystemExit, which asyncio re-raises out of
    run_forever) is reported, so the worker exits and is restarted instead of holding its leases."""
    async_pool, _, died = pool

    def stop_the_loop() -> None:
        raise SystemExit("from a callback")

    async_pool._loop.call_soon_threadsafe(stop_the_loop)
    deadline = time.monotonic() + 5
    while not died and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(died) == 1 and died[0][0] == "jobqueue-async" and isinstance(died[0][1], SystemExit)
