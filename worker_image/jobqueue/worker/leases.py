"""The worker's bookkeeping of what it holds: leased tasks (running or prefetched) and finished outcomes
not yet recorded in Redis. No I/O and no locking: the runtime calls it under its lock.

Prefetch is adaptive. Leasing tasks beyond the free slots saves a round trip per task when tasks are
short, but a prefetched task waits behind running ones while another worker may sit idle: the classic
prefetch trap of long tasks. So the buffer is used only while recent attempts finish fast on average.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from jobqueue.broker.leases import Job, Outcome, OutcomeKind

# Prefetch only while attempts take less than this on average (exponentially weighted).
PREFETCH_MAX_TASK_SECONDS = 0.1
# While prefetching, buffer about this much work per slot: a fetch round trip and an ack round trip are
# then shared by many short tasks, yet a worker never holds more than a few hundredths of a second of
# work per slot that another worker could have started.
PREFETCH_WORK_SECONDS = 0.02
# The default upper bound of the buffer (``--prefetch`` sets another).
DEFAULT_PREFETCH = 256
# While tasks wait in the buffer, top it up once this many (or half the buffer, if smaller) have room: a
# fetch of a full batch takes milliseconds on a busy machine (measured 5-12 ms for ~120 tasks with 16
# threads contending for the GIL), so refilling only at half let the buffer run dry on every cycle and
# every slot thread went to sleep and had to be woken again.
REFILL_BATCH = 32
# Weight of each finished attempt in the average run time. Small, so one attempt delayed by a thread
# switch (a no-op task is sometimes held up 10 ms waiting for the GIL) does not collapse the buffer; one
# long task still shrinks it at once, since a mean is pulled up by any long attempt.
_EWMA_WEIGHT = 0.05


@dataclass
class LeaseBook:
    """Leased jobs by (task id, fencing token), the prefetch buffer, and outcomes awaiting their ack.

    Keyed by (id, token): a task whose lease expired may be leased to this same worker again while the
    stale attempt still runs, and the two attempts must not be confused.
    """

    concurrency: int
    prefetch: int
    leased: dict[tuple[str, int], Job] = field(default_factory=dict)
    prefetched: deque[Job] = field(default_factory=deque)
    unacked: deque[tuple[Job, Outcome]] = field(default_factory=deque)
    running: dict[tuple[str, int], float] = field(default_factory=dict)  # job -> monotonic start
    # Taken out of the buffer to wait in a busy executor (AheadPool); running once ``start_ahead`` says so.
    ahead: dict[tuple[str, int], Job] = field(default_factory=dict)
    average_run_seconds: float | None = None

    @property
    def effective_prefetch(self) -> int:
        """The prefetch in force: none until tasks are known to be short; then about
        PREFETCH_WORK_SECONDS of work per slot, at least one task per slot, at most ``prefetch``."""
        average = self.average_run_seconds
        if average is None or average > PREFETCH_MAX_TASK_SECONDS:
            return 0
        by_time = int(self.concurrency * PREFETCH_WORK_SECONDS / max(average, 1e-6))
        return min(self.prefetch, max(self.concurrency, by_time))

    def free_slots(self) -> int:
        """How many more tasks to lease now."""
        return self.concurrency + self.effective_prefetch - len(self.leased)

    def should_fetch(self) -> bool:
        """Fetch when there is room; with tasks still prefetched, wait for a batch (REFILL_BATCH, at most
        half the buffer) to free, so one call leases several tasks while the pool keeps running."""
        free = self.free_slots()
        if free <= 0:
            return False
        return not self.prefetched or free >= max(1, min(REFILL_BATCH, self.effective_prefetch // 2))

    def lease(self, jobs: list[Job], now: float | None = None) -> list[Job]:
        """Record newly leased jobs; returns those to start now (the rest wait in the buffer)."""
        start_now = []
        for job in jobs:
            self.leased[(job.id, job.token)] = job
            if len(self.running) < self.concurrency:
                start_now.append(job)
                self.running[(job.id, job.token)] = time.monotonic() if now is None else now
            else:
                self.prefetched.append(job)
        return start_now

    def lease_running(self, job: Job, now: float | None = None) -> None:
        """Record a newly leased job that already runs: the idle executor that received it started it
        (a process pool child's idle wait, worker/process_wait.py), so it never waits in the buffer."""
        self.leased[(job.id, job.token)] = job
        self.running[(job.id, job.token)] = time.monotonic() if now is None else now

    def finish(self, outcome: Outcome, now: float | None = None) -> Job | None:
        """Record an attempt's outcome for acking; returns the prefetched job that takes its slot."""
        key = (outcome.task_id, outcome.token)
        now = time.monotonic() if now is None else now
        started = self.running.pop(key, None)
        if started is not None and outcome.kind == OutcomeKind.SUCCESS:
            elapsed = now - started
            previous = self.average_run_seconds
            self.average_run_seconds = (
                elapsed if previous is None else previous + _EWMA_WEIGHT * (elapsed - previous)
            )
        job = self.leased.pop(key, None)
        if job is not None:
            self.unacked.append((job, outcome))
        if self.prefetched and len(self.running) < self.concurrency:
            next_job = self.prefetched.popleft()
            self.running[(next_job.id, next_job.token)] = now
            return next_job
        return None

    def take_ahead(self) -> Job | None:
        """A prefetched job to wait in a busy executor, while tasks are short (prefetch in force: the
        same bound on how long a task may wait behind another); None otherwise."""
        if not self.prefetched or self.effective_prefetch == 0:
            return None
        job = self.prefetched.popleft()
        self.ahead[(job.id, job.token)] = job
        return job

    def start_ahead(self, job: Job, now: float | None = None) -> None:
        """A job taken ahead has started (its predecessor in the executor ended)."""
        key = (job.id, job.token)
        if self.ahead.pop(key, None) is not None:
            self.running[key] = time.monotonic() if now is None else now

    def cancel_prefetched(self, task_id: str) -> bool:
        """Cancel a task that waits in the buffer (it never starts); False if it is not there."""
        job = next((j for j in self.prefetched if j.id == task_id), None)
        if job is None:
            return False
        self.prefetched.remove(job)
        self.leased.pop((job.id, job.token), None)
        outcome = Outcome(
            job.id, job.token, OutcomeKind.CANCELLED, error="TaskCancelled: cancelled before it started"
        )
        self.unacked.append((job, outcome))
        return True

    def take_prefetched(self) -> list[Job]:
        """Empty the buffer (on drain: its tasks go back to the queue, never started)."""
        jobs = list(self.prefetched)
        self.prefetched.clear()
        for job in jobs:
            self.leased.pop((job.id, job.token), None)
        return jobs

    def holds(self, task_id: str) -> bool:
        """Whether any attempt of this task is leased here."""
        return any(key[0] == task_id for key in self.leased)

    def held_jobs(self) -> list[Job]:
        """Every job whose lease this worker must keep renewing (leased or finished but not acked)."""
        return list(self.leased.values()) + [job for job, _ in self.unacked]

    def forget_leases(self) -> None:
        """After the pool stopped: nothing runs any more (unfinished jobs were handed back)."""
        self.leased.clear()
        self.running.clear()
        self.ahead.clear()
