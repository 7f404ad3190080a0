"""The worker's acker thread: records finished attempts in Redis, many fenced completions per round trip.

:class:`Acking` is the part of :class:`jobqueue.worker.runtime.Worker` that runs in the acker thread; the
worker sets up the state it declares. A Redis outage is waited out with the outcomes kept. An outcome
that Redis refuses for any other reason (a lone surrogate in an exception message cannot be encoded, a
script error) is isolated from its batch and recorded as a failed attempt with a plain-ASCII reason: the
acker must never stop on one outcome, since a worker whose acker is gone still heartbeats and so keeps
its tasks RUNNING for ever.
"""

from __future__ import annotations

import logging
import random
import threading
import time

import redis

from jobqueue.app import App
from jobqueue.broker.completion import CompletionCode
from jobqueue.broker.completion_calls import plan_completions
from jobqueue.broker.leases import Job, Outcome, OutcomeKind, log_stale_completion
from jobqueue.broker.redis_io import ReplicaWait, run_scripts
from jobqueue.broker.task_metrics import TaskMetrics, outcome_counter
from jobqueue.errors import BrokerUnavailable
from jobqueue.hooks import DeadLetterNotice, HookKind
from jobqueue.retry import QUEUE_DEFAULT_RETRY, QueueDefaultRetry, RetryPolicy
from jobqueue.settings import Settings
from jobqueue.worker.burst import Burst
from jobqueue.worker.fetching import MAX_BACKOFF_SECONDS
from jobqueue.worker.leases import LeaseBook
from jobqueue.worker.task_log import TaskLog

log = logging.getLogger(__name__)

# While other leased tasks are still running, the acker waits up to ACK_LINGER_SECONDS for ACK_BATCH
# outcomes before recording them, so one round trip and one script call carry many tasks (the process pool
# of 4 acked ~4 per call, and each call costs the worker's one busy interpreter tens of microseconds). A
# lone task (nothing else leased) is recorded at once: the linger never delays an idle worker's results.
ACK_BATCH = 64
ACK_LINGER_SECONDS = 0.005
# How much of the original error an unrecordable outcome keeps (escaped to ASCII, so storable anywhere).
UNRECORDABLE_ERROR_CHARS = 2000

Batch = list[tuple[Job, Outcome]]


def unrecordable(outcome: Outcome, exc: BaseException) -> Outcome:
    """A failed, non-retryable stand-in for an outcome Redis would not take: its reason and the original
    error escaped to ASCII, no result and no traceback (either may hold what was refused)."""
    original = ascii(outcome.error[:UNRECORDABLE_ERROR_CHARS]) if outcome.error else "none"
    error = (
        f"UnrecordableOutcome: the attempt's {outcome.kind.value} could not be stored "
        f"({type(exc).__name__}); original error: {original}"
    )
    return Outcome(outcome.task_id, outcome.token, OutcomeKind.ERROR, error=error, retryable=False)


class Acking:
    """Recording outcomes (state set up by Worker.__init__)."""

    app: App
    settings: Settings
    redis: redis.Redis
    worker_id: str
    _stop: threading.Event
    _lock: threading.Condition
    _ack_wanted: threading.Condition
    _book: LeaseBook
    _rng: random.Random
    # JOBQUEUE_REDIS_WAIT_REPLICAS: an ack batch is reported done only once replicas hold it.
    _replica_wait: ReplicaWait | None
    _acked_total: int
    _burst: Burst | None
    task_log: TaskLog
    task_metrics: TaskMetrics

    def _wake_all(self) -> None:
        raise NotImplementedError  # Worker

    def _retry_policy(self, job: Job) -> RetryPolicy | QueueDefaultRetry | None:
        definition = self.app.registry.get(job.name)
        # A task without a policy of its own retries by its queue's defaults (fail.lua reads them).
        return (definition.options.retry or QUEUE_DEFAULT_RETRY) if definition is not None else None

    def _ack_loop(self) -> None:
        backoff = 0.05
        while True:
            with self._lock:
                while not self._book.unacked:
                    if self._stop.is_set() and not self._book.leased:
                        return
                    self._ack_wanted.wait(timeout=0.5)
                linger_until = time.monotonic() + ACK_LINGER_SECONDS
                while len(self._book.unacked) < ACK_BATCH and self._book.leased and not self._stop.is_set():
                    remaining = linger_until - time.monotonic()
                    if remaining <= 0:
                        break
                    self._ack_wanted.wait(timeout=remaining)
                batch = list(self._book.unacked)
            try:
                results = self._record(batch)
                backoff = 0.05
            except BrokerUnavailable as exc:
                # Keep the outcomes: they are delivered with their fencing tokens once Redis is back.
                log.warning("recording %d outcome(s) failed, retrying in %.2fs: %s", len(batch), backoff, exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if self._burst is not None:
                self._burst.record(batch, results)
            for (job, outcome), result in zip(batch, results, strict=True):
                log_stale_completion(job, outcome.kind.value, result)
                # Per queue and task name, flushed with the next heartbeat (no round trip of its own).
                if (counter := outcome_counter(result, outcome.kind)) is not None:
                    self.task_metrics.count(job.queue, job.name, counter)
            self.task_log.recorded(batch, results)
            if self.app.hooks.has(HookKind.DEAD_LETTER):
                self._notify_dead_letters(batch, results)
            with self._lock:
                for _ in batch:
                    self._book.unacked.popleft()
                self._acked_total += len(batch)
                self._wake_all()

    def _notify_dead_letters(self, batch: Batch, codes: list[CompletionCode]) -> None:
        """Run the on_dead_letter hooks for the tasks fail.lua moved to the dead-letter queue (every
        final failure but a cancel). In this thread: a slow hook delays the next acks, never a task."""
        for (job, outcome), code in zip(batch, codes, strict=True):
            if code is CompletionCode.FINISHED and outcome.kind != OutcomeKind.CANCELLED:
                status = "TIMEOUT" if outcome.kind == OutcomeKind.TIMEOUT else "FAILED"
                notice = DeadLetterNotice(job.id, job.name, job.queue, job.token, status, outcome.error)
                self.app.hooks.run(HookKind.DEAD_LETTER, notice, task_id=job.id)

    def _record(self, batch: Batch) -> list[CompletionCode]:
        """Record a batch in one round trip; if Redis refuses it for a reason other than an outage, record
        its outcomes one by one so only the bad ones are replaced (see :func:`unrecordable`)."""
        try:
            return self._run_plan(batch)
        except BrokerUnavailable:
            raise
        except Exception as exc:
            log.warning(
                "recording a batch of %d outcome(s) failed (%r); recording them one by one", len(batch), exc
            )
        return [self._record_alone(job, outcome) for job, outcome in batch]

    def _record_alone(self, job: Job, outcome: Outcome) -> CompletionCode:
        try:
            return self._run_plan([(job, outcome)])[0]
        except BrokerUnavailable:
            raise
        except Exception as exc:
            log.error(
                "task %s: its %s could not be recorded (%r); recording the attempt as failed instead",
                job.id,
                outcome.kind.value,
                exc,
                extra={"task_id": job.id, "queue": job.queue},
            )
            return self._run_plan([(job, unrecordable(outcome, exc))])[0]

    def _run_plan(self, batch: Batch) -> list[CompletionCode]:
        plan = plan_completions(self.settings, batch, self._retry_policy, self._rng, worker_id=self.worker_id)
        return plan.results(run_scripts(self.redis, plan.calls, self._replica_wait))
