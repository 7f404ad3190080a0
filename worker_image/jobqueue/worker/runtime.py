"""The worker: fetch in batches, run on a pool, ack in batches, heartbeat, drain on SIGTERM.

Threads (each with its own Redis connection from the shared pool):
- main: fetch loop (worker/fetching.py); blocks on the queues' wake-up keys and its inbox when idle,
  never polls on an interval;
- acker: records outcomes, many fenced acks per round trip; keeps them across a Redis outage;
- heartbeat: renews every held lease in one round trip per queue, registers the worker, reads cancel
  requests and drain instructions;
- cancel listener: pub/sub notices so a cancel reaches a running task at once.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from jobqueue.app import App
from jobqueue.broker.client import HOLD
from jobqueue.broker.enqueue import build_recover
from jobqueue.broker.redis_io import connect, load_all_scripts, run_scripts, translate_errors
from jobqueue.broker.scripts import ScriptCall
from jobqueue.broker.task_metrics import MetricsFlush, TaskMetrics, build_flush
from jobqueue.errors import BrokerUnavailable, JobQueueError
from jobqueue.keys import GlobalKeys, QueueKeys, validate_queue_name
from jobqueue.retry import QUEUE_DEFAULT_RETRY, QueueDefaultRetry, RetryPolicy
from jobqueue.serialization import dumps
from jobqueue.worker.burst import Burst
from jobqueue.worker.fetching import MAX_BACKOFF_SECONDS, Fetching
from jobqueue.worker.health import LivenessFile
from jobqueue.worker.jobs import (
    Job,
    Outcome,
    OutcomeKind,
    build_heartbeat,
    build_release,
    parse_heartbeat,
    plan_completions,
)
from jobqueue.worker.leases import DEFAULT_PREFETCH, LeaseBook
from jobqueue.worker.pool import Pool, SlotWaitPool

log = logging.getLogger(__name__)

# While other leased tasks are still running, the acker waits up to ACK_LINGER_SECONDS for ACK_BATCH
# outcomes before recording them, so one round trip and one script call carry many tasks (the process pool
# of 4 acked ~4 per call, and each call costs the worker's one busy interpreter tens of microseconds). A
# lone task (nothing else leased) is recorded at once: the linger never delays an idle worker's results.
ACK_BATCH = 64
ACK_LINGER_SECONDS = 0.005
# How often the cancel listener looks at the stop flag between pub/sub messages (a local select, no
# round trip): bounds how long a drained worker waits for it to end.
CANCEL_POLL_SECONDS = 0.25


def default_worker_id(pod_name: str | None) -> str:
    """The pod name in Kubernetes, else host-pid-random."""
    if pod_name:
        return pod_name
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"  # noqa: S311


class Worker(Fetching):
    """One worker process serving ``queues`` (in priority order) with ``pool``."""

    def __init__(
        self,
        app: App,
        pool: Pool,
        queues: Sequence[str],
        *,
        worker_id: str | None = None,
        grace_seconds: float = 30.0,
        prefetch: int | None = None,
        before_fetching: Callable[[], None] | None = None,
        burst: Burst | None = None,
    ) -> None:
        if not queues:
            raise JobQueueError("a worker needs at least one queue")
        self.app = app
        self.settings = app.settings
        self.pool = pool
        self.queues = [validate_queue_name(q) for q in queues]
        self.worker_id = worker_id or default_worker_id(self.settings.pod_name)
        self._liveness = LivenessFile(self.settings.health_dir, self.worker_id)
        self.grace_seconds = grace_seconds
        # Called once everything is up (pool, heartbeat, registration), just before the first fetch: the
        # start gate of `--processes` (worker/processes.py) holds each process there until all are up.
        self._before_fetching = before_fetching
        # Burst mode (worker/burst.py): the fetch loop ends once the queues are idle.
        self._burst = burst
        self.redis = connect(self.settings)
        # The idle wait blocks on its own connection, whose client id a timer can unblock.
        self._blocking = connect(self.settings, single_connection=True)
        self.global_keys = GlobalKeys(self.settings.key_prefix)
        self._keys = {q: QueueKeys(self.settings.key_prefix, q) for q in self.queues}
        self._stop = threading.Event()
        # Set once drained: the heartbeat ends at once instead of after its interval (in-process runs,
        # such as jobqueue.testing.run_until_idle, join it before they close the connections).
        self._finished = threading.Event()
        self._threads: list[threading.Thread] = []
        # Set while the operator holds this worker drained (Client.request_drain(exit=False)): no fetching,
        # but alive until its pod is deleted or the drain is called off.
        self._held = threading.Event()
        self._owns_signals = False  # set by install_signal_handlers
        # One re-entrant mutex (stop() runs in a signal handler, maybe while the main thread holds it) and
        # two conditions on it, so an outcome wakes the acker, and the fetch loop only when it has room.
        self._mutex = threading.RLock()
        self._lock = threading.Condition(self._mutex)
        self._ack_wanted = threading.Condition(self._mutex)
        self.prefetch = max(pool.concurrency, DEFAULT_PREFETCH) if prefetch is None else max(0, prefetch)
        self._book = LeaseBook(pool.concurrency, self.prefetch)  # guarded by self._lock
        # Queues this worker is parked on (enqueue may hand it tasks), with the monotonic time it parked;
        # only the main thread (fetch loop, drain) reads or changes it.
        self._parked: dict[str, float] = {}
        # The thread pool runs the idle wait in a free slot (see _wait_in_slot).
        self._slot_pool = pool if isinstance(pool, SlotWaitPool) else None
        self._acked_total = 0
        self._started = time.time()
        self._rng = random.Random()  # noqa: S311 - jitter only
        # Run time and queue wait histograms, flushed with the heartbeat (never a round trip per task).
        self.task_metrics = TaskMetrics(lambda name: name in app.registry)

    # -- lifecycle -------------------------------------------------------------------------------------

    def _wake_all(self) -> None:
        """Wake every waiter (state changes other than one outcome: stop, drain, cancel). Lock held."""
        self._lock.notify_all()
        self._ack_wanted.notify_all()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT start a graceful drain."""

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: draining", signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        self._owns_signals = True

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called (SIGTERM, a drain request)."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Stop fetching; run() finishes in-flight work within the grace period and returns."""
        self._stop.set()
        with self._lock:
            self._wake_all()

    def run(self) -> int:
        """Run until stopped; returns the process exit code (0 after a clean drain)."""
        self._liveness.touch()
        self._wait_for_redis()
        with translate_errors():
            self.redis.sadd(self.global_keys.queues, *self.queues)
        self.pool.start(self._on_outcome)
        self._threads = threads = [
            threading.Thread(target=self._ack_loop, name="jobqueue-acker", daemon=True),
            threading.Thread(target=self._heartbeat_loop, name="jobqueue-heartbeat", daemon=True),
            threading.Thread(target=self._cancel_listener, name="jobqueue-cancel", daemon=True),
        ]
        for t in threads:
            t.start()
        log.info(
            "worker %s started on queues %s with %d slots",
            self.worker_id,
            ",".join(self.queues),
            self.pool.concurrency,
        )
        try:
            if self._before_fetching is not None:
                self._before_fetching()
            self._fetch_loop()
        finally:
            self._drain()
            self._liveness.remove()
            if self._owns_signals:
                # Drained: a late SIGTERM (a pod deleted just as its worker exits) must not turn a clean
                # exit 0 into death by signal while the interpreter shuts down.
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        return 0 if self._burst is None else self._burst.summary().exit_code

    def close(self) -> None:
        """Close this worker's Redis connections (after run() returned; a process simply exits)."""
        self._blocking.close()
        self.redis.close()

    def _wait_for_redis(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                load_all_scripts(self.redis)
                return
            except BrokerUnavailable as exc:
                log.warning("waiting for Redis: %s", exc)
                self._liveness.touch()  # alive, only waiting: the kubelet must not restart it for that
                self._stop.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)

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

    def _metrics_flush_call(self, flush: MetricsFlush) -> ScriptCall:
        return build_flush(self.settings.key_prefix, self.task_metrics.writer, flush)

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
                run_scripts(self.redis, [build_release(self.settings, job) for job in jobs])
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

    # -- outcomes --------------------------------------------------------------------------------------

    def _on_outcome(self, outcome: Outcome) -> Job | None:
        """Called by the pool for each finished attempt; returns the prefetched job that takes the freed
        slot (the pool starts it there, with no round trip and no hand-off to another thread)."""
        with self._lock:
            key = (outcome.task_id, outcome.token)
            started, job = self._book.running.get(key), self._book.leased.get(key)
            next_job = self._book.finish(outcome)
            # The acker waits for the first outcome or, lingering, for a full batch: not woken per outcome.
            pending = len(self._book.unacked)
            if pending == 1 or pending >= ACK_BATCH:
                self._ack_wanted.notify()
            # The fetch loop waits for room (and drain for the last lease): not woken on every outcome.
            if self._stop.is_set() or self._book.should_fetch():
                self._lock.notify()
        if started is not None and job is not None and outcome.kind != OutcomeKind.REJECTED:
            self.task_metrics.observe_run(job.queue, job.name, time.monotonic() - started)
        return next_job

    def _cancel(self, task_id: str, force: bool) -> None:
        """A cancel request: a prefetched task is cancelled before it starts; a running one via the pool."""
        with self._lock:
            if self._book.cancel_prefetched(task_id):
                self._wake_all()
                return
        self.pool.cancel(task_id, force=force)

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
            plan = plan_completions(self.settings, batch, self._retry_policy, self._rng)
            try:
                results = plan.results(run_scripts(self.redis, plan.calls))
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
                if result == 0:
                    log.warning(
                        "task %s: lease lost before its %s was recorded; another attempt owns it",
                        job.id,
                        outcome.kind.value,
                        extra={"task_id": job.id, "queue": job.queue},
                    )
            with self._lock:
                for _ in batch:
                    self._book.unacked.popleft()
                self._acked_total += len(batch)
                self._wake_all()

    # -- heartbeat, cancel, drain ----------------------------------------------------------------------

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
        with translate_errors():
            pipe = self.redis.pipeline(transaction=False)
            key = self.global_keys.worker(self.worker_id)
            pipe.hset(key, mapping=info)
            pipe.expire(key, max(60, int(self.settings.lease_seconds * 3)))
            pipe.zadd(self.global_keys.workers, {self.worker_id: now_ms})
            pipe.hget(self.global_keys.worker_control(self.worker_id), "drain")
            *_, drain = pipe.execute()
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
        while True:
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
            if self._finished.wait(interval):
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
