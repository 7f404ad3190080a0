"""Force cancel against the thread pool's own threads, racing the task's return (no Redis: the pool alone).

A force cancel sets the task's cancel flag and raises TaskCancelled in its thread. The task may see the
flag and return first, or the exception may arrive after the task's code returned: either way the attempt
must end CANCELLED, and the slot thread must live on to run the next job.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator

import pytest

from jobqueue import App
from jobqueue.broker.leases import Job, Outcome, OutcomeKind
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
    outcomes: dict[str, Outcome] = {}
    done = threading.Condition()

    def on_outcome(outcome: Outcome) -> None:
        with done:
            outcomes[outcome.task_id] = outcome
            done.notify_all()

    died: list[object] = []
    pool = ThreadPool(app, concurrency=1)
    pool.start(on_outcome, on_loop_died=lambda *a: died.append(a))
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
            with done:
                assert done.wait_for(lambda: task_id in outcomes, 5), f"{task_id} never ended"
            assert outcomes[task_id].kind is OutcomeKind.CANCELLED, outcomes[task_id]
        pool.submit(_job("after", "quick"))
        with done:
            assert done.wait_for(lambda: "after" in outcomes, 5)
        assert outcomes["after"].kind is OutcomeKind.SUCCESS
        assert not died
    finally:
        pool.stop()
