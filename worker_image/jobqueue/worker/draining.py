"""How a worker ends: the drain after SIGTERM or a drain request (finish running work within the grace
period, hand the rest back, flush what is not yet acked, deregister), and the hand-back after one of its
loops died (no grace period: the loop that died may be the one a drain needs).

:class:`Draining` is the part of :class:`jobqueue.worker.runtime.Worker` that hands leases back to their
queues; the worker sets up the state it declares, and the heartbeat and the fetch loop use its hand-back
too (a drain instruction, tasks leased but not started).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from jobqueue.broker.completion import CompletionCode, parse_completion
from jobqueue.broker.leases import Job, build_release, log_stale_completion
from jobqueue.broker.redis_io import run_scripts, translate_errors
from jobqueue.broker.scripts import ScriptCall
from jobqueue.broker.task_metrics import MetricsFlush, TaskMetrics
from jobqueue.errors import BrokerUnavailable, JobQueueError
from jobqueue.keys import GlobalKeys
from jobqueue.settings import Settings
from jobqueue.worker.acking import Batch
from jobqueue.worker.cluster_wait import ClusterWait
from jobqueue.worker.heartbeat import CANCEL_POLL_SECONDS
from jobqueue.worker.leases import LeaseBook
from jobqueue.worker.pool import Pool

log = logging.getLogger(__name__)


class Draining:
    """Drain, abandon and hand back (state set up by Worker.__init__).

    First among Worker's bases: Heartbeating and Fetching declare the hand-backs defined here."""

    settings: Settings
    redis: redis.Redis
    worker_id: str
    pool: Pool
    global_keys: GlobalKeys
    task_metrics: TaskMetrics
    grace_seconds: float
    _blocking: redis.Redis | ClusterWait
    _lock: threading.Condition
    _book: LeaseBook
    _finished: threading.Event
    _threads: list[threading.Thread]
    # Declared, not stubbed: a stub here would hide Fetching's and Acking's own, which come after.
    _unpark: Callable[[], None]
    _record: Callable[[Batch], list[CompletionCode]]

    def _wake_all(self) -> None:
        raise NotImplementedError  # Worker

    def _metrics_flush_call(self, flush: MetricsFlush) -> ScriptCall:
        raise NotImplementedError  # Worker

    def _drain(self) -> None:
        deadline = time.monotonic() + self.grace_seconds
        self._unpark()
        self._release_prefetched()
        with self._lock:
            while self._book.leased and time.monotonic() < deadline:
                self._lock.wait(timeout=0.1)
        unfinished = self.pool.stop()
        if unfinished:
            log.warning("grace period over: handing %d unfinished task(s) back", len(unfinished))
            self._release(unfinished)
        flush_deadline = time.monotonic() + max(5.0, self.grace_seconds / 2)
        with self._lock:
            self._book.forget_leases()
            self._wake_all()
            while self._book.unacked and time.monotonic() < flush_deadline:
                self._lock.wait(timeout=0.1)
        # The heartbeat must not register this worker again after _deregister removed it.
        self._finished.set()
        for thread in self._threads:
            thread.join(timeout=CANCEL_POLL_SECONDS + 1.0)
        self._flush_task_metrics()
        self._deregister()

    def _flush_task_metrics(self) -> None:
        """Write what the last heartbeat did not carry (the tasks finished since)."""
        pending = self.task_metrics.take()
        try:
            run_scripts(self.redis, [self._metrics_flush_call(flush) for flush in pending])
        except JobQueueError as exc:
            log.warning("could not write the last task metrics: %s", exc)

    def _abandon(self) -> None:
        """After a loop died: stop the pool, record the outcomes not yet acked if Redis takes them, hand
        every other lease back (one try; otherwise they expire and are recovered) and deregister. No
        grace period: the loop that died may be the one the drain needs."""
        try:
            self._unpark()
            unfinished = self.pool.stop()
            with self._lock:
                jobs = self._book.take_prefetched()
                jobs += [job for job in self._book.leased.values() if job not in jobs]
                finished = list(self._book.unacked)
                self._book.unacked.clear()
                self._book.forget_leases()
            if finished:
                try:
                    self._record(finished)  # done work is kept when it can be (fenced: never twice)
                except Exception as exc:
                    log.warning("could not record %d finished task(s): %r", len(finished), exc)
                    jobs += [job for job, _ in finished]
            run_scripts(
                self.redis,
                [build_release(self.settings, job, worker_id=self.worker_id) for job in {*jobs, *unfinished}],
            )
        except Exception as exc:
            log.warning("could not hand back every task; their leases will expire and be recovered: %r", exc)
        finally:
            self._deregister()  # not listed as a live worker while its process exits

    def _release_prefetched(self) -> None:
        """Hand prefetched (never started) tasks back to the front of their queue at once: draining
        finishes running work, not work it merely leased ahead."""
        with self._lock:
            jobs = self._book.take_prefetched()
            self._wake_all()
        if jobs:
            self._release(jobs)

    def _release(self, jobs: list[Job]) -> None:
        for attempt in range(20):
            try:
                calls = [build_release(self.settings, job, worker_id=self.worker_id) for job in jobs]
                replies = run_scripts(self.redis, calls)
                for job, reply in zip(jobs, replies, strict=True):
                    log_stale_completion(job, "hand-back", parse_completion(reply)[0])
                return
            except BrokerUnavailable:
                time.sleep(min(0.1 * 2**attempt, 1.0))
        log.error("could not hand back %d task(s); their leases will expire and be recovered", len(jobs))

    def _deregister(self) -> None:
        try:
            with translate_errors():
                pipe = self.redis.pipeline(transaction=False)
                pipe.zrem(self.global_keys.workers, self.worker_id)
                pipe.delete(self.global_keys.worker(self.worker_id))
                pipe.delete(self.global_keys.worker_control(self.worker_id))
                pipe.execute()
        except BrokerUnavailable:
            pass
        self._blocking.close()
