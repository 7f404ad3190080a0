"""The worker: fetch in batches, run on a pool, ack in batches, heartbeat, drain on SIGTERM.

Threads (each with its own Redis connection from the shared pool):
- main: fetch loop (worker/fetching.py); blocks on the queues' wake-up keys and its inbox when idle,
  never polls on an interval;
- acker: records outcomes, many fenced acks per round trip; keeps them across a Redis outage;
- heartbeat: renews every held lease in one round trip per queue, registers the worker, reads cancel
  requests and drain instructions (worker/heartbeat.py);
- cancel listener: pub/sub notices so a cancel reaches a running task at once (worker/heartbeat.py).

Each of them runs supervised (jobqueue.supervision): restarted after an unexpected exception, and past
the bound the worker stops heartbeating, hands its leases back and exits EXIT_LOOP_DIED. How it drains
and hands leases back is worker/draining.py.
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
from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.broker.redis_io import ReplicaWait, connect, is_cluster, load_all_scripts, translate_errors
from jobqueue.broker.scripts import ScriptCall
from jobqueue.broker.task_metrics import MetricsFlush, TaskMetrics, build_flush
from jobqueue.errors import BrokerUnavailable, JobQueueError
from jobqueue.hooks import HookKind
from jobqueue.keys import GlobalKeys, QueueKeys, validate_queue_name
from jobqueue.supervision import EXIT_LOOP_DIED, RestartPolicy, run_supervised, supervised_thread
from jobqueue.worker.acking import ACK_BATCH, Acking
from jobqueue.worker.burst import Burst
from jobqueue.worker.cluster_wait import ClusterWait
from jobqueue.worker.draining import Draining
from jobqueue.worker.fetching import MAX_BACKOFF_SECONDS, Fetching
from jobqueue.worker.health import LivenessFile
from jobqueue.worker.heartbeat import Heartbeating
from jobqueue.worker.leases import DEFAULT_PREFETCH, LeaseBook
from jobqueue.worker.pool import AheadPool, ChildWaitPool, Pool, SlotWaitPool
from jobqueue.worker.process_wait import HandoffPace
from jobqueue.worker.task_log import TaskLog

log = logging.getLogger(__name__)

# Every worker loop (acker, heartbeat, cancel listener, fetcher) is restarted after an unexpected failure;
# five in a row, each within the healthy window of the last, and the worker gives up and exits.
WORKER_LOOPS = RestartPolicy(initial_delay=0.1, max_delay=2.0, max_failures=5, healthy_after=30.0)
# Once a loop died, the worker hands back what it can and exits; if its main thread is itself stuck, a
# watchdog ends the process after this long: a broken worker must not linger while it looks alive.
DEATH_EXIT_SECONDS = 15.0


def default_worker_id(pod_name: str | None) -> str:
    """The pod name in Kubernetes, else host-pid-random."""
    if pod_name:
        return pod_name
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"  # noqa: S311


class Worker(Draining, Heartbeating, Fetching, Acking):
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
        # A pinned connection (and a Cluster client's slot map) connects here, at once: Redis unreachable
        # at start is BrokerUnavailable, one line and exit code 2 from the CLI, not a driver traceback.
        with translate_errors():
            self.redis = connect(self.settings)
            # The idle wait blocks on its own connection, whose client id a timer can unblock; on Redis
            # Cluster on one connection per queue slot (worker/cluster_wait.py).
            self._blocking = (
                ClusterWait(self.settings, self.redis)
                if is_cluster(self.redis)
                else connect(self.settings, single_connection=True)
            )
        self._replica_wait = ReplicaWait.of(self.settings)
        self.global_keys = GlobalKeys(self.settings.key_prefix)
        self._keys = {q: QueueKeys(self.settings.key_prefix, q) for q in self.queues}
        self._stop = threading.Event()
        # Set when a loop of this worker died (failed past its restart bound): no more heartbeats, hand
        # back what can be handed back, exit EXIT_LOOP_DIED.
        self._dead = threading.Event()
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
        # The process pool runs it in an idle child (see _wait_in_child).
        self._child_pool = pool if isinstance(pool, ChildWaitPool) else None
        self._pace = HandoffPace()  # only the fetch loop uses it
        if isinstance(pool, AheadPool):
            pool.queue_ahead(self._take_ahead, self._started_ahead)
        self._acked_total = 0
        self._started = time.time()
        self._rng = random.Random()  # noqa: S311 - jitter only
        # Run time and queue wait histograms, flushed with the heartbeat (never a round trip per task).
        self.task_metrics = TaskMetrics(lambda name: name in app.registry)
        # One line per task transition (worker/task_log.py).
        self.task_log = TaskLog(
            self.worker_id,
            self.settings.log_task_payload_chars,
            logging.getLevelName(self.settings.log_task_success_level),
        )

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
        """Run until stopped; returns the process exit code (0 after a clean drain, EXIT_LOOP_DIED after
        one of its loops died)."""
        self._liveness.touch()
        # Before any task can start here (the process pool's children run their own when they start).
        self.app.hooks.run(HookKind.WORKER_START)
        self._wait_for_redis()
        with translate_errors():
            self.redis.sadd(self.global_keys.queues, *self.queues)
        self.pool.start(self._on_outcome, self._loop_died)
        loops = [
            ("jobqueue-acker", self._ack_loop),
            ("jobqueue-heartbeat", self._heartbeat_loop),
            ("jobqueue-cancel", self._cancel_listener),
        ]
        # Kept so a drain can join them (in-process runs close the connections after run() returns).
        self._threads = [
            supervised_thread(name, loop, policy=WORKER_LOOPS, stop=self._dead, on_give_up=self._loop_died)
            for name, loop in loops
        ]
        for thread in self._threads:
            thread.start()
        log.info(
            "worker %s started on queues %s with %d slots",
            self.worker_id,
            ",".join(self.queues),
            self.pool.concurrency,
        )
        try:
            if self._before_fetching is not None:
                self._before_fetching()
            run_supervised(
                "jobqueue-fetcher",
                self._fetch_loop,
                policy=WORKER_LOOPS,
                stop=self._stop,
                on_give_up=self._loop_died,
            )
        finally:
            if self._dead.is_set():
                self._abandon()
            else:
                self._drain()
            self._liveness.remove()
            self.app.hooks.run(HookKind.WORKER_STOP)
            if self._owns_signals:
                # Drained: a late SIGTERM (a pod deleted just as its worker exits) must not turn a clean
                # exit 0 into death by signal while the interpreter shuts down.
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        if self._dead.is_set():
            return EXIT_LOOP_DIED
        return 0 if self._burst is None else self._burst.summary().exit_code

    def close(self) -> None:
        """Close this worker's Redis connections (after run() returned; a process simply exits)."""
        self._blocking.close()
        self.redis.close()

    def _loop_died(self, name: str, exc: BaseException) -> None:
        """A loop failed past its bound (or a pool lost track of a task): this worker can no longer be
        trusted to finish what it holds. Stop heartbeating at once, so its leases expire and are
        recovered even if the rest fails, and make run() hand back what it can and exit non-zero."""
        if self._dead.is_set():
            return
        log.critical(
            "worker %s: %s died (%s: %s); exiting with code %d so its tasks are recovered elsewhere",
            self.worker_id,
            name,
            type(exc).__name__,
            exc,
            EXIT_LOOP_DIED,
        )
        self._dead.set()
        # The main thread normally exits within a second or two; if it is the one that is stuck (or the
        # lock stop() takes is), nothing else would end the process.
        watchdog = threading.Timer(DEATH_EXIT_SECONDS, os._exit, args=(EXIT_LOOP_DIED,))
        watchdog.daemon = True
        watchdog.start()
        self.stop()

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

    def _metrics_flush_call(self, flush: MetricsFlush) -> ScriptCall:
        return build_flush(self.settings.key_prefix, self.task_metrics.writer, flush)

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
        if started is not None and job is not None:
            seconds = time.monotonic() - started
            self.task_log.ran(outcome, seconds)
            if outcome.kind != OutcomeKind.REJECTED:
                self.task_metrics.observe_run(job.queue, job.name, seconds)
        if next_job is not None:
            self.task_log.started((next_job,))
        return next_job

    def _take_ahead(self) -> Job | None:
        """A prefetched job for a busy executor to start next (AheadPool); none once draining or held,
        when the buffer goes back to the queue instead."""
        with self._lock:
            if self._stop.is_set() or self._held.is_set():
                return None
            job = self._book.take_ahead()
            if job is not None and self._book.should_fetch():
                self._lock.notify()
        return job

    def _started_ahead(self, job: Job) -> None:
        with self._lock:
            self._book.start_ahead(job)
        self.task_log.started((job,))

    def _cancel(self, task_id: str, force: bool) -> None:
        """A cancel request: a prefetched task is cancelled before it starts; a running one via the pool."""
        with self._lock:
            if self._book.cancel_prefetched(task_id):
                self._wake_all()
                return
        self.pool.cancel(task_id, force=force)
