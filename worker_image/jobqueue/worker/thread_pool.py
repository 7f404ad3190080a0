"""The thread pool: cheaper than processes, weaker isolation (the asyncio pool is in async_pool.py).

What it can do about time limits and force-cancel (documented in docs/guarantees.md): soft timeout and
force cancel raise SoftTimeout / TaskCancelled inside the task's thread at its next Python bytecode (not
inside a blocking C call); at the hard limit the attempt is reported TIMEOUT at once and the thread is
abandoned (its late result is discarded by fencing) and replaced.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
import time
from dataclasses import dataclass

from jobqueue.app import App
from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.errors import ForceCancelled, SoftTimeout, TaskCancelled, TaskTimeout
from jobqueue.supervision import NO_RESTART, GiveUp, RestartPolicy, supervised_thread
from jobqueue.worker.execution import (
    describe,
    failure,
    run_job,
)
from jobqueue.worker.pool import OutcomeCallback, SlotWaiter
from jobqueue.worker.progress import ProgressSink

log = logging.getLogger(__name__)

# The time-limit monitor keeps no state of its own (it reads the running entries): it may be restarted.
MONITOR_RESTARTS = RestartPolicy(initial_delay=0.1, max_delay=2.0, max_failures=5)


FORCE_CANCELLED = "TaskCancelled: force-cancelled"


def _raise_in_thread(thread_id: int, exc_type: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc_type))


def _clear_raised_in_thread(thread_id: int) -> None:
    """Drop an exception _raise_in_thread left pending in a thread that has not reached it yet."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)


@dataclass
class _Running:
    job: Job
    thread_id: int
    hard_deadline: float | None
    soft_deadline: float | None
    # A plain flag, not a threading.Event (a Condition and a lock allocated per task): only ever set to
    # True, and a bool assignment is atomic.
    cancelled: bool = False
    forced: bool = False
    abandoned: bool = False
    soft_fired: bool = False
    # Set under the pool's lock once the task's code has returned: nothing is raised in its thread after.
    finished: bool = False

    def is_cancelled(self) -> bool:
        return self.cancelled


class ThreadPool:
    """``concurrency`` threads in this process."""

    def __init__(self, app: App, concurrency: int) -> None:
        self.app = app
        self.concurrency = concurrency
        # Jobs to run, slot waiters (see submit_waiter) and None (stop).
        self._jobs: queue.Queue[Job | SlotWaiter | None] = queue.Queue()
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._on_outcome: OutcomeCallback | None = None
        self._stopping = threading.Event()
        self._on_loop_died: GiveUp | None = None
        # None when the app has no task hook: the hot path then skips them with one test.
        self._hooks = app.hooks if app.hooks.has_task_hooks() else None
        self._progress = ProgressSink(lambda: app.client.redis, app.settings)

    def start(self, on_outcome: OutcomeCallback, on_loop_died: GiveUp | None = None) -> None:
        """Start the threads and the time-limit monitor."""
        self._on_outcome = on_outcome
        self._on_loop_died = on_loop_died
        for _ in range(self.concurrency):
            self._start_thread()
        supervised_thread(
            "jobqueue-timeouts", self._monitor, policy=MONITOR_RESTARTS, on_give_up=on_loop_died
        ).start()

    def _start_thread(self) -> None:
        # A slot thread that fails outside the task (the task's own exceptions are its outcome) has lost
        # track of the job it ran: restarting the thread would leave that task leased here for ever, so
        # the worker is told to exit instead (its leases are then recovered).
        supervised_thread(
            "jobqueue-task", self._loop, policy=NO_RESTART, on_give_up=self._on_loop_died
        ).start()

    def submit(self, job: Job) -> None:
        """Queue a job for the next free thread."""
        self._jobs.put(job)

    def submit_waiter(self, waiter: SlotWaiter) -> None:
        """Run the worker's idle wait in the next free thread; a job it receives runs in that thread."""
        self._jobs.put(waiter)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            item = self._jobs.get()
            # A waiter blocks on Redis in this idle thread and returns the task it received, which then
            # starts right here: no queue hand-off (a thread wake-up) between the reply and the start.
            job = item if item is None or isinstance(item, Job) else item()
            # A finished job's slot is refilled here, in this thread: no queue hand-off (a thread switch)
            # per task while prefetched work is waiting.
            while job is not None:
                abandoned, job = self._run(job)
                if abandoned:
                    return  # a replacement thread already took this one's place

    def _run(self, job: Job) -> tuple[bool, Job | None]:
        """Run one job and report its outcome: (abandoned meanwhile, the job to run next in this slot)."""
        now = time.monotonic()
        entry = _Running(
            job,
            threading.get_ident(),
            now + job.timeout if job.timeout else None,
            now + job.soft_timeout if job.soft_timeout else None,
        )
        with self._lock:
            self._running[job.id] = entry
        try:
            outcome = run_job(self.app.registry, job, entry.is_cancelled, self._hooks, self._progress)
        except SoftTimeout as exc:  # injected after the task returned: still a failure of this attempt
            outcome = failure(job, exc, True)
        except TaskCancelled as exc:  # a force cancel injected just as the task returned
            outcome = Outcome(job.id, job.token, OutcomeKind.CANCELLED, error=describe(exc))
        except BaseException as exc:  # SystemExit or KeyboardInterrupt raised by the task
            # The task's to report, not this thread's to die of: a dead slot thread would leave the task
            # leased here, renewed by every heartbeat, for ever.
            outcome = failure(job, exc, False)
        abandoned = self._finish(entry)
        if entry.forced and outcome.kind is not OutcomeKind.CANCELLED:
            # The force cancel won the race with the task's return (or the task saw the cancel flag, set
            # just before the exception was raised, and returned): a forced attempt ends CANCELLED.
            outcome = Outcome(job.id, job.token, OutcomeKind.CANCELLED, error=FORCE_CANCELLED)
        if abandoned:
            return True, None
        if self._on_outcome is None:
            return False, None
        return False, self._on_outcome(outcome)

    def _finish(self, entry: _Running) -> bool:
        """Take the entry out of the running set; True if it was abandoned meanwhile.

        A force cancel or soft timeout raised into this thread just as the task returned may fire here,
        after run_job's handlers: it is caught and the step retried. Once ``finished`` is set under the
        lock nothing more is raised, and any exception still pending is cleared, so none can reach the
        slot loop (whose death would leave the worker unable to run tasks).
        """
        while True:
            try:
                with self._lock:
                    entry.finished = True
                    _clear_raised_in_thread(entry.thread_id)
                    self._running.pop(entry.job.id, None)
                    return entry.abandoned
            except (TaskCancelled, SoftTimeout):
                continue

    def _monitor(self) -> None:
        while not self._stopping.wait(0.05):
            now = time.monotonic()
            timed_out: list[Job] = []
            soft: list[Job] = []
            with self._lock:
                for entry in self._running.values():
                    if (
                        entry.soft_deadline is not None
                        and not entry.finished
                        and not entry.soft_fired
                        and now >= entry.soft_deadline
                    ):
                        entry.soft_fired = True
                        _raise_in_thread(entry.thread_id, SoftTimeout)
                        soft.append(entry.job)
                    if entry.hard_deadline is not None and not entry.abandoned and now >= entry.hard_deadline:
                        entry.abandoned = True
                        timed_out.append(entry.job)
            for job in soft:
                log.warning(
                    "task %s reached its soft time limit of %ss: raising SoftTimeout in it",
                    job.id,
                    job.soft_timeout,
                    extra={"task_id": job.id, "queue": job.queue},
                )
            for job in timed_out:
                log.warning("task %s hit its hard time limit; abandoning its thread", job.id)
                self._start_thread()
                exc = TaskTimeout(f"hard time limit of {job.timeout}s exceeded; thread abandoned")
                if self._on_outcome is not None:
                    outcome = Outcome(
                        job.id, job.token, OutcomeKind.TIMEOUT, error=describe(exc), retryable=True
                    )
                    next_job = self._on_outcome(outcome)
                    if next_job is not None:
                        self.submit(next_job)

    def cancel(self, task_id: str, force: bool) -> None:
        """Graceful: flag. Force: raise TaskCancelled in the task's thread."""
        with self._lock:
            entry = self._running.get(task_id)
            if entry is None or entry.finished:
                return
            if force and not entry.forced:  # once: the heartbeat repeats what the cancel channel said
                entry.forced = True
                _raise_in_thread(entry.thread_id, ForceCancelled)
            entry.cancelled = True

    def stop(self) -> list[Job]:
        """Stop taking jobs; return those still running (their threads are abandoned)."""
        self._stopping.set()
        for _ in range(self.concurrency):
            self._jobs.put(None)
        with self._lock:
            unfinished = [e.job for e in self._running.values() if not e.abandoned]
            for e in self._running.values():
                e.abandoned = True
            return unfinished
