"""The worker's heartbeat thread (renew every held lease, publish the worker's state, apply cancel requests
and drain instructions, recover expired leases of its queues) and its cancel listener thread (pub/sub
notices, so a cancel reaches a running task at once).

:class:`Heartbeating` is the part of :class:`jobqueue.worker.runtime.Worker` that runs in those two
threads; the worker sets up the state it declares. The heartbeat stops for good once the worker is dead
(a loop failed past its bound): leases it no longer renews expire and are recovered elsewhere.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import redis

from jobqueue.broker.client import HOLD
from jobqueue.broker.lease_recovery import build_recover
from jobqueue.broker.leases import Job, build_heartbeat, parse_heartbeat
from jobqueue.broker.redis_io import run_scripts, translate_errors
from jobqueue.broker.scripts import ScriptCall
from jobqueue.broker.task_metrics import MetricsFlush, TaskMetrics
from jobqueue.broker.worker_registry import publish_worker_record
from jobqueue.errors import BrokerUnavailable, JobQueueError
from jobqueue.keys import GlobalKeys, QueueKeys
from jobqueue.serialization import dumps
from jobqueue.settings import Settings
from jobqueue.worker.health import LivenessFile
from jobqueue.worker.leases import LeaseBook
from jobqueue.worker.pool import Pool

log = logging.getLogger(__name__)

# How often the cancel listener looks at the stop flag between pub/sub messages (a local select, no
# round trip): bounds how long a drained worker waits for it to end.
CANCEL_POLL_SECONDS = 0.25


class Heartbeating:
    """Heartbeat, cancel requests and drain instructions (state set up by Worker.__init__)."""

    settings: Settings
    redis: redis.Redis
    worker_id: str
    queues: list[str]
    pool: Pool
    global_keys: GlobalKeys
    task_metrics: TaskMetrics
    _keys: dict[str, QueueKeys]
    _stop: threading.Event
    _held: threading.Event
    _dead: threading.Event
    _finished: threading.Event
    _liveness: LivenessFile
    _lock: threading.Condition
    _book: LeaseBook
    _acked_total: int
    _started: float

    def stop(self) -> None:
        raise NotImplementedError  # Worker

    def _cancel(self, task_id: str, force: bool) -> None:
        raise NotImplementedError  # Worker: a prefetched task before it starts, a running one via the pool

    def _release_prefetched(self) -> None:
        raise NotImplementedError  # Worker (worker/draining.py)

    def _metrics_flush_call(self, flush: MetricsFlush) -> ScriptCall:
        raise NotImplementedError  # Worker

    def _held_jobs(self) -> list[Job]:
        with self._lock:
            return self._book.held_jobs()

    def heartbeat_once(self) -> None:
        """Renew leases, publish this worker's state, apply cancel requests and drain instructions."""
        held = self._held_jobs()
        by_queue: dict[str, list[Job]] = {}
        for job in held:
            by_queue.setdefault(job.queue, []).append(job)
        calls = [build_heartbeat(self.settings, q, self.worker_id, jobs) for q, jobs in by_queue.items()]
        # Histogram deltas ride in the same round trip; if it fails they are re-sent unchanged next beat.
        pending = self.task_metrics.take()
        replies = run_scripts(self.redis, calls + [self._metrics_flush_call(flush) for flush in pending])
        self.task_metrics.confirm(pending)
        replies = replies[: len(calls)]
        with self._lock:
            # Only tasks still leased here (running or prefetched) count: a finished one whose ack reached
            # Redis before this script (its reply not yet read by the acker) reads as lost but is not, and
            # a finished one that really lost its lease is reported by the acker when its ack is refused.
            still_held = {job.id for job in self._book.leased.values()}
        for reply in replies:
            lost, cancels = parse_heartbeat(reply)
            for task_id in lost:
                if task_id in still_held:
                    log.warning(
                        "lease of task %s was lost (recovered elsewhere)", task_id, extra={"task_id": task_id}
                    )
            for task_id, mode in cancels.items():
                self._cancel(task_id, force=mode == "force")
        now_ms = int(time.time() * 1000)
        info = {
            "status": "DRAINING"
            if self._stop.is_set() or self._held.is_set()
            else ("ACTIVE" if held else "IDLE"),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": ",".join(self.queues),
            "concurrency": self.pool.concurrency,
            "in_flight": dumps([job.id for job in held], "in_flight"),
            "processed": self._acked_total,
            "started_at": self._started,
            "heartbeat_at": now_ms / 1000,
        }
        ttl = max(60, int(self.settings.lease_seconds * 3))
        drain = publish_worker_record(self.redis, self.global_keys, self.worker_id, info, ttl)
        self._apply_drain(drain)

    def _apply_drain(self, drain: str | None) -> None:
        """Act on the control hash's drain value: exit, hold (stop fetching, stay up), or resume."""
        if self._stop.is_set():
            return
        if drain == HOLD:
            if not self._held.is_set():
                log.info(
                    "drain requested for worker %s: holding (no fetching) until its pod goes", self.worker_id
                )
                self._held.set()
                self._release_prefetched()
        elif drain:
            log.info("drain requested for worker %s", self.worker_id)
            self.stop()
        elif self._held.is_set():
            log.info("drain called off for worker %s: fetching again", self.worker_id)
            self._held.clear()
            with self._lock:
                self._lock.notify_all()

    def _heartbeat_loop(self) -> None:
        interval = self.settings.effective_heartbeat_seconds
        next_recovery = time.monotonic()
        while not self._dead.is_set():
            try:
                self.heartbeat_once()
                # Workers also recover expired leases of their own queues (idempotent, bounded), so a
                # deployment without a scheduler process still gets dead workers' tasks back.
                if time.monotonic() >= next_recovery:
                    next_recovery = time.monotonic() + self.settings.lease_seconds
                    run_scripts(self.redis, [build_recover(self.settings, q) for q in self.queues])
            except JobQueueError as exc:
                log.warning("heartbeat failed: %s", exc)
            # Whatever Redis answered: the liveness probe asks whether this loop still runs.
            self._liveness.touch()
            if self._stop.is_set() and not self._book.leased and not self._book.unacked:
                return
            # Ends at once when drained (_finished: the heartbeat must not register this worker again
            # after _deregister removed it) or when a loop died (_dead: no more heartbeats).
            if self._finished.wait(interval) or self._dead.is_set():
                return

    def _cancel_listener(self) -> None:
        channels = [k.cancel_channel for k in self._keys.values()]
        while not self._stop.is_set():
            try:
                with translate_errors():
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(*channels)
                    while not self._stop.is_set():
                        message = pubsub.get_message(timeout=CANCEL_POLL_SECONDS)
                        if message and isinstance(message.get("data"), str):
                            task_id, _, mode = message["data"].partition(" ")
                            with self._lock:
                                held = self._book.holds(task_id)
                            if held:
                                self._cancel(task_id, force=mode == "force")
                    pubsub.close()
            except BrokerUnavailable:
                self._stop.wait(1.0)
