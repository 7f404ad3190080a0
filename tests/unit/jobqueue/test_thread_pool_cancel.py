"""Force cancel against the thread pool's own threads, racing the task's return (no Redis: the pool alone).

A force cancel sets the task's cancel flag and raises TaskCancelled in its thread. The task may see the
flag and return first, or the exception may arrive after the task's code returned: either way the attempt
must end CANCELLED, and the slot thread must live on to run the next job.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from pool_outcomes import Outcomes

from jobqueue import App
from jobqueue.broker.leases import Job, OutcomeKind
from jobqueue.context import TaskContext
from jobqueue.worker.thread_pool import ThreadPool

app = App()


@app.task(bind=True)
def poll_cancel(ctx: TaskContext) -> str:
    while not ctx.is_cancelled():
        pass  # a tight loop: the cancel flag and the raised exception race each other
    return "saw cancel"


@app.task
def quick() -> int:
    return 1


def _job(task_id: str, name: str) -> Job:
    return Job(task_id, 1, name, "[]", "{}", "default", "normal", None, None, 0, 0, None)


@pytest.fixture(autouse=True)
def tiny_switch_interval() -> Iterator[None]:
    """Switch threads as often as CPython can, so the race windows are hit within a few hundred tries."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_forced_attempts_end_cancelled_and_the_slot_lives_on() -> None:
    outcomes = Outcomes()
    died: list[object] = []
    pool = ThreadPool(app, concurrency=1)
    pool.start(outcomes, on_loop_died=lambda *a: died.append(a))
    try:
        for n in range(500):
            task_id = f"t{n}"
            pool.submit(_job(task_id, "poll_cancel"))
            deadline = time.monotonic() + 5
            while task_id not in pool._running:  # wait until it runs, then cancel
                assert time.monotonic() < deadline, f"{task_id} never started; died: {died}"
                time.sleep(0.0005)
            time.sleep((n % 5) * 0.0003)
            pool.cancel(task_id, force=True)
            # The same request again, as the heartbeat's reply repeats what the cancel channel said.
            time.sleep((n % 3) * 0.0002)
            pool.cancel(task_id, force=True)
            assert outcomes.wait(task_id)[0].kind is OutcomeKind.CANCELLED, outcomes.by_id[task_id]
        pool.submit(_job("after", "quick"))
        assert outcomes.wait("after")[0].kind is OutcomeKind.SUCCESS
        assert not died
    finally:
        pool.stop()


def test_a_force_cancel_arriving_after_the_task_returned_still_ends_it_cancelled() -> None:
    """Deterministic form of the race: the force cancel lands while the after_task hook runs (the task's
    code has returned SUCCESS; the raised exception is swallowed by the hook runner). The attempt was
    forced, so it ends CANCELLED, and the slot thread runs the next job."""
    late = App()
    pools: list[ThreadPool] = []

    @late.task
    def returns_at_once() -> int:
        return 1

    @late.after_task
    def cancel_myself(ctx: TaskContext, outcome: object) -> None:
        if ctx.id.startswith("forced"):
            pools[0].cancel(ctx.id, force=True)

    outcomes = Outcomes()
    pool = ThreadPool(late, concurrency=1)
    pools.append(pool)
    died: list[object] = []
    pool.start(outcomes, on_loop_died=lambda *a: died.append(a))
    try:
        pool.submit(_job("forced-1", "returns_at_once"))
        pool.submit(_job("plain-1", "returns_at_once"))
        forced, plain = outcomes.wait("forced-1", "plain-1", timeout=5)
        assert forced.kind is OutcomeKind.CANCELLED, forced
        assert plain.kind is OutcomeKind.SUCCESS
        assert not died
    finally:
        pool.stop()
