"""The executor interface every pool kind implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from jobqueue.broker.leases import Job, Outcome
from jobqueue.supervision import GiveUp
from jobqueue.worker.process_wait import ChildWait

# Called once per finished attempt; returns the job that takes the freed slot, if any (the pool starts it
# there itself: in the same thread, or in the same child process).
OutcomeCallback = Callable[[Outcome], Job | None]
# A blocking wait run in an idle slot (see SlotWaitPool): it returns the job to run in that slot, if any.
SlotWaiter = Callable[[], Job | None]
# Queueing ahead (AheadPool): ``take`` returns a prefetched job to wait in a busy executor, to start the
# moment its current job ends (None when there is none, or tasks are not short enough to wait behind one
# another); ``started`` tells the worker that such a job has started (its predecessor ended).
TakeAhead = Callable[[], Job | None]
StartedAhead = Callable[[Job], None]


class Pool(Protocol):
    """Runs jobs concurrently and reports each one's Outcome through the callback given to start()."""

    concurrency: int

    def start(self, on_outcome: OutcomeCallback, on_loop_died: GiveUp | None = None) -> None:
        """Start the executors. ``on_loop_died`` is called if an internal thread of the pool dies (or
        keeps failing): the pool may then have lost track of a task, and the worker must exit."""

    def submit(self, job: Job) -> None:
        """Run a job; the caller guarantees a free slot."""

    def cancel(self, task_id: str, force: bool) -> None:
        """Graceful: the task's ctx.is_cancelled() turns true. Force: stop it now where the pool can."""

    def stop(self) -> list[Job]:
        """Stop every executor at once and return the jobs that had not finished (no outcome reported)."""


@runtime_checkable
class SlotWaitPool(Protocol):
    """A pool whose idle slot can run the worker's idle wait itself (the thread pool): a task the wait
    receives then starts in the thread that received it, with no hand-over to another thread."""

    def submit_waiter(self, waiter: SlotWaiter) -> None:
        """Run ``waiter`` in the next idle slot, then the job it returns (if any) in that same slot. The
        caller guarantees a free slot, as for submit()."""


@runtime_checkable
class AheadPool(Protocol):
    """A pool whose busy executor can hold the next job ahead of time (the process pool: the child starts
    it without waiting for the worker process to read the outcome and send more work)."""

    def queue_ahead(self, take: TakeAhead, started: StartedAhead) -> None:
        """Take jobs ahead through ``take`` from now on, reporting each one's start through ``started``."""


@runtime_checkable
class ChildWaitPool(Protocol):
    """A pool whose idle child process can run the worker's idle wait itself (the process pool): a task
    the wait receives then starts in the child that received it (worker/process_wait.py)."""

    def wait_in_child(self, wait: ChildWait) -> bool:
        """Run ``wait`` in an idle child and block until it is over (``wait.handed_off`` says what it
        got); False at once when no child is idle and ready (then the caller waits itself)."""
