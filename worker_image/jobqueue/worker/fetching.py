"""The worker's fetch loop: lease in batches across its queues, park when idle so enqueue can hand a task
straight here (lua/_handoff.lua), and wait on the wake-up keys and its inbox, in a free pool slot when the
pool supports it so a handed-off task starts in the thread that received it.

:class:`Fetching` is the part of :class:`jobqueue.worker.runtime.Worker` that runs in the main thread
(and, for the slot wait, in one pool thread); the worker sets up the state it declares.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

from jobqueue.broker.leases import FetchReply, Job, build_fetch, parse_fetch, parse_handoff
from jobqueue.broker.redis_io import run_script, translate_errors
from jobqueue.broker.task_metrics import TaskMetrics
from jobqueue.errors import BrokerUnavailable
from jobqueue.keys import QueueKeys
from jobqueue.settings import Settings
from jobqueue.worker.burst import Burst
from jobqueue.worker.cluster_wait import ClusterWait
from jobqueue.worker.leases import LeaseBook
from jobqueue.worker.pool import ChildWaitPool, Pool, SlotWaitPool
from jobqueue.worker.process_wait import ChildWait, HandoffPace
from jobqueue.worker.task_log import TaskLog

log = logging.getLogger(__name__)

# An idle worker re-checks at least this often even without a wake-up (config changes such as resume
# of a paused queue, and lost wake-ups after a Redis restart): one cheap call per second, not a poll loop.
IDLE_RECHECK_SECONDS = 1.0
# How long a parked worker's entry (lua/_handoff.lua) stays valid. An idle worker renews it at every idle
# re-check, so an entry this old belongs to a worker that stopped or died: enqueue no longer hands it
# tasks, and one handed to it just before it died is recovered when its lease expires.
PARK_SECONDS = 3.0
# A worker that keeps receiving hand-offs never times out of its wait: it renews its entry by a fetch once
# the entry is this old.
PARK_RENEW_SECONDS = PARK_SECONDS / 3
MAX_BACKOFF_SECONDS = 5.0


class _SlotWait:
    """One idle wait handed to a pool slot, and what it got (fields guarded by the worker's lock)."""

    QUEUED, WAITING, DONE = "queued", "waiting", "done"

    def __init__(self) -> None:
        self.state = self.QUEUED
        self.handed_off: tuple[str, int] | None = None  # (queue, capacity left) after a hand-off
        self.error: Exception | None = None


class Fetching:
    """Fetching, parking and the idle wait of one worker (state set up by Worker.__init__)."""

    settings: Settings
    worker_id: str
    queues: list[str]
    pool: Pool
    redis: redis.Redis
    task_metrics: TaskMetrics
    task_log: TaskLog
    _blocking: redis.Redis | ClusterWait
    _keys: dict[str, QueueKeys]
    _stop: threading.Event
    _held: threading.Event
    _lock: threading.Condition
    _book: LeaseBook
    _parked: dict[str, float]
    _slot_pool: SlotWaitPool | None
    _child_pool: ChildWaitPool | None
    _pace: HandoffPace
    _burst: Burst | None

    def _release(self, jobs: list[Job]) -> None:
        raise NotImplementedError  # Worker (worker/draining.py): hands jobs back to their queue unstarted

    # -- fetching --------------------------------------------------------------------------------------

    def _fetch_loop(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            if self._held.is_set() and self._parked:
                self._unpark()  # held: no task may be handed here any more
            with self._lock:
                while (self._held.is_set() or not self._book.should_fetch()) and not self._stop.is_set():
                    self._lock.wait(timeout=1.0)
                free = self._book.free_slots()
                # Burst mode: a fetch that finds nothing ends the run only if no outcome was still on its
                # way to Redis before it (an ack may release workflow children, a failure a retry).
                idle = not self._book.leased and not self._book.unacked
            if self._stop.is_set():
                return
            if self._burst is not None:
                self._burst.begin_fetch()
            try:
                got, wait_seconds, wake_keys = self._fetch(free)
                backoff = 0.05
            except BrokerUnavailable as exc:
                log.warning("fetch failed, retrying in %.2fs: %s", backoff, exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if got == 0 and self._burst is None:
                self._idle_wait(wait_seconds, wake_keys)
            elif got == 0 and not self._burst_wait(idle, wait_seconds):
                self._stop.set()  # the run is over: the acker, heartbeat and listener end with the drain
                return

    def _burst_wait(self, idle: bool, wait_seconds: float) -> bool:
        """Burst mode after a fetch found nothing: wait for what may still come; False = the run is over.

        While tasks are in flight it waits for their outcomes here, not on the wake-up keys: what comes
        next in a burst run comes mostly from those outcomes (workflow children, retries), and the next
        fetch also takes anything enqueue handed to this worker meanwhile."""
        assert self._burst is not None  # only called in burst mode
        if not idle:
            with self._lock:
                if (self._book.leased or self._book.unacked) and not self._stop.is_set():
                    self._lock.wait(timeout=min(wait_seconds, IDLE_RECHECK_SECONDS))
            return True
        pause = self._burst.idle_pause()
        if pause is None:
            return False
        self._stop.wait(pause)
        return True

    def _fetch(self, free: int) -> tuple[int, float, list[str]]:
        """Lease up to ``free`` tasks across the queues in order; returns (leased, wait, wake keys)."""
        got = 0
        wait = IDLE_RECHECK_SECONDS
        wake_keys: list[str] = []
        park_ms = int(PARK_SECONDS * 1000)
        for queue in self.queues:
            want = free - got
            if want <= 0 and queue not in self._parked:
                continue
            # Every fetch unparks first (and takes what was handed off meanwhile); with room left it parks
            # again when it finds nothing, so the next task enqueued comes straight here.
            want = max(0, want)
            call = build_fetch(self.settings, queue, want, self.worker_id, park_ms if want else 0)
            reply = parse_fetch(queue, run_script(self.redis, call), self.settings.effective_default_timeout)
            if want and not reply.jobs and reply.wait_ms == -1:
                self._parked[queue] = time.monotonic()
            else:
                self._parked.pop(queue, None)
            self._start(queue, reply)
            if self._burst is not None:
                self._burst.observe(reply, IDLE_RECHECK_SECONDS)
            got += len(reply.jobs)
            if reply.wait_ms > 0:
                wait = min(wait, reply.wait_ms / 1000)  # rate limited: sleep exactly that long
            else:
                wake_keys.append(self._keys[queue].wake)
                if reply.next_due_ms >= 0:
                    wait = min(wait, reply.next_due_ms / 1000)
        return got, wait, wake_keys

    def _start(self, queue: str, reply: FetchReply) -> None:
        """Book leased jobs and start those that have a free slot (the rest wait prefetched)."""
        for job in self._book_leased(queue, reply):
            self.pool.submit(job)

    def _book_leased(self, queue: str, reply: FetchReply) -> list[Job]:
        """Count the jobs' queue waits and book them; returns those that have a free slot now."""
        if reply.jobs:
            self.task_metrics.observe_waits(queue, reply.queue_wait_ms)
        with self._lock:
            start_now = self._book.lease(reply.jobs)
        self.task_log.received(reply.jobs)
        self.task_log.started(start_now)
        return start_now

    def _unpark(self) -> None:
        """Leave every parked hash and hand back what was handed here meanwhile (never started)."""
        jobs: list[Job] = []
        for queue in list(self._parked):
            try:
                call = build_fetch(self.settings, queue, 0, self.worker_id, 0)
                jobs += parse_fetch(queue, run_script(self.redis, call)).jobs
                del self._parked[queue]
            except BrokerUnavailable as exc:
                # The entry expires after PARK_SECONDS; a task handed here is recovered with its lease.
                log.warning("could not leave the parked workers of queue %s: %s", queue, exc)
        if jobs:
            self._release(jobs)

    def _idle_wait(self, wait_seconds: float, wake_keys: list[str]) -> None:
        if wait_seconds <= 0:
            return
        if not wake_keys:
            self._stop.wait(wait_seconds)
            return
        inboxes = {self._keys[q].inbox(self.worker_id): q for q in self._parked}
        # Only a wait for a delayed task's due time has a deadline; the idle re-check is renewed by
        # _take_handoff's fetch once the parked entry gets old.
        deadline = time.monotonic() + wait_seconds if wait_seconds < IDLE_RECHECK_SECONDS else None
        try:
            with translate_errors():
                while True:
                    if inboxes and self._slot_free():
                        # A hand-off starts in the slot that popped it (thread pool).
                        handed = self._wait_in_slot(wait_seconds, [*inboxes, *wake_keys], inboxes)
                        if handed is None or not self._may_stay_parked(*handed):
                            return
                    elif inboxes and self._child_free(wait_seconds):
                        # A hand-off starts in the child process that popped it (process pool).
                        ran, handed = self._wait_in_child(wait_seconds, [*inboxes, *wake_keys], inboxes)
                        if ran and (handed is None or not self._may_stay_parked(*handed)):
                            return
                        if not ran and not self._wait_here(wait_seconds, [*inboxes, *wake_keys], inboxes):
                            return
                    elif not self._wait_here(wait_seconds, [*inboxes, *wake_keys], inboxes):
                        return
                    if deadline is not None:
                        wait_seconds = deadline - time.monotonic()
                        if wait_seconds <= 0:
                            return
        except BrokerUnavailable as exc:
            log.warning("wake-up wait failed: %s", exc)
            self._stop.wait(0.2)

    def _wait_here(self, wait_seconds: float, keys: list[str], inboxes: dict[str, str]) -> bool:
        """The idle wait in this thread; True if a task was handed off and this worker may go on waiting
        parked, False if it must fetch."""
        popped = self._blocking_wait(wait_seconds, keys)
        queue = inboxes.get(popped[0]) if popped else None
        if queue is None or popped is None:
            self._pace.quiet()
            return False  # woken (or timed out): fetch
        self._pace.handed_off(time.monotonic())
        return self._take_handoff(queue, popped[1])

    def _book_handoff(self, queue: str, record: str) -> tuple[list[Job], int] | None:
        """Book a task enqueue handed to this parked worker: (jobs to start now, capacity left), or None
        when it was handed off just as a drain began (then it goes back to the queue unstarted, like
        prefetched work)."""
        reply, capacity_left = parse_handoff(queue, record, self.settings.effective_default_timeout)
        if self._stop.is_set() or self._held.is_set():
            self._release(reply.jobs)
            return None
        return self._book_leased(queue, reply), capacity_left

    def _take_handoff(self, queue: str, record: str) -> bool:
        """Start a handed-off task; True if this worker may go on waiting parked (still in the parked
        hash, entry fresh, not stopping), False if it must fetch first."""
        booked = self._book_handoff(queue, record)
        if booked is None:
            return False
        start_now, capacity_left = booked
        for job in start_now:
            self.pool.submit(job)
        return self._may_stay_parked(queue, capacity_left)

    def _may_stay_parked(self, queue: str, capacity_left: int) -> bool:
        """After a hand-off: whether this worker is still parked on ``queue`` with a fresh entry (then it
        goes on waiting), else it must fetch (to park again or take queued work)."""
        parked_at = self._parked.get(queue)
        if capacity_left <= 0 or parked_at is None:
            self._parked.pop(queue, None)
            return False
        return not self._stop.is_set() and time.monotonic() - parked_at < PARK_RENEW_SECONDS

    # -- the idle wait in a pool slot (thread pool) ------------------------------------------------------

    def _slot_free(self) -> bool:
        """Whether the idle wait can run in a pool slot: the pool supports it and a slot is free now (the
        fetch loop submits nothing while it waits, so the slot stays free until the wait runs)."""
        if self._slot_pool is None or self._stop.is_set() or self._held.is_set():
            return False
        with self._lock:
            return len(self._book.running) < self.pool.concurrency

    def _wait_in_slot(
        self, wait_seconds: float, keys: list[str], inboxes: dict[str, str]
    ) -> tuple[str, int] | None:
        """Run one blocking wait in an idle pool slot (SlotWaitPool) and wait for what it got: (queue,
        capacity left) after a hand-off, which already runs in that slot, else None (fetch).

        A handed-off task then starts in the thread that received it: when the fetch loop waits itself,
        a thread wake-up and a GIL hand-over (~100-250 us measured) sit between the reply and the start.
        The fetch loop keeps the parked state (only this thread changes it); the slot only pops, books
        and runs."""
        wait = _SlotWait()
        assert self._slot_pool is not None  # _slot_free checked it
        self._slot_pool.submit_waiter(lambda: self._slot_wait(wait, wait_seconds, keys, inboxes))
        # The wait ends within wait_seconds of starting; a slot that never took it up (which the free-slot
        # check rules out) is given up after a margin, so stopping can never hang here.
        give_up = time.monotonic() + wait_seconds + 5.0
        with self._lock:
            while wait.state != _SlotWait.DONE:
                if wait.state == _SlotWait.QUEUED and time.monotonic() >= give_up:
                    wait.state = _SlotWait.DONE
                    break
                self._lock.wait(timeout=1.0)
        if wait.error is not None:
            raise wait.error
        return wait.handed_off

    def _slot_wait(
        self, wait: _SlotWait, wait_seconds: float, keys: list[str], inboxes: dict[str, str]
    ) -> Job | None:
        """In the pool slot: pop the inbox or a wake-up key; book a handed-off task and return it to be
        run in this slot. Reports to the fetch loop before the task runs, so it can wait again at once."""
        with self._lock:
            if wait.state != _SlotWait.QUEUED:
                return None  # given up by the fetch loop
            wait.state = _SlotWait.WAITING
        job: Job | None = None
        try:
            with translate_errors():
                popped = self._blocking_wait(wait_seconds, keys)
            queue = inboxes.get(popped[0]) if popped else None
            booked = self._book_handoff(queue, popped[1]) if queue is not None and popped else None
            if queue is not None and booked is not None:
                start_now, capacity_left = booked
                job = start_now[0] if start_now else None
                for other in start_now[1:]:
                    self.pool.submit(other)
                wait.handed_off = (queue, capacity_left)
        except Exception as exc:
            wait.error = exc  # raised in the fetch loop, as if its own wait had failed
        with self._lock:
            wait.state = _SlotWait.DONE
            self._lock.notify_all()
        return job

    # -- the idle wait in a child process (process pool) --------------------------------------------------

    def _child_free(self, wait_seconds: float) -> bool:
        """Whether the idle wait can run in a child of the pool (worker/process_wait.py): the pool supports
        it, hand-offs are not arriving back to back (HandoffPace), a slot is free, and the wait is a plain
        one (no delayed task due before the idle re-check, which needs the precise CLIENT UNBLOCK timer of
        _blocking_wait; not on Redis Cluster)."""
        if self._child_pool is None or isinstance(self._blocking, ClusterWait):
            return False
        if not self._pace.wait_in_child():
            return False
        if wait_seconds < IDLE_RECHECK_SECONDS or self._stop.is_set() or self._held.is_set():
            return False
        with self._lock:
            return len(self._book.running) < self.pool.concurrency

    def _wait_in_child(
        self, wait_seconds: float, keys: list[str], inboxes: dict[str, str]
    ) -> tuple[bool, tuple[str, int] | None]:
        """Run one idle wait in an idle child and wait for what it got: (whether a child ran it, (queue,
        capacity left) after a hand-off, which already runs in that child)."""
        assert self._child_pool is not None  # _child_free checked it
        wait = ChildWait(keys, inboxes, wait_seconds, self._adopt_handoff)
        if not self._child_pool.wait_in_child(wait):
            return False, None
        if wait.handed_off is None:
            self._pace.quiet()
        else:
            self._pace.handed_off(time.monotonic())
        return True, wait.handed_off

    def _adopt_handoff(self, queue: str, record: str) -> tuple[Job, int]:
        """Book a task a child popped from this worker's inbox and already runs (called by the pool's
        monitor before it reads that child's outcome). Booked even when a drain has begun: it has started,
        so the drain waits for it like any running task."""
        reply, capacity_left = parse_handoff(queue, record, self.settings.effective_default_timeout)
        self.task_metrics.observe_waits(queue, reply.queue_wait_ms)
        with self._lock:
            for job in reply.jobs:
                self._book.lease_running(job)
        self.task_log.received(reply.jobs)
        self.task_log.started(reply.jobs)
        return reply.jobs[0], capacity_left

    def _blocking_wait(self, wait_seconds: float, keys: list[str]) -> tuple[str, str] | None:
        """BLPOP the wake-up keys until a task arrives or ``wait_seconds`` pass.

        Redis checks blocking timeouts on its cron tick (every 100 ms at the default hz 10), so a short
        BLPOP timeout can overshoot by up to 100 ms. When a delayed task is due before the idle re-check,
        a local timer ends the wait precisely with CLIENT UNBLOCK, and BLPOP's own timeout is a fallback.
        """
        if isinstance(self._blocking, ClusterWait):
            return self._blocking.blpop(keys, wait_seconds)
        if wait_seconds >= IDLE_RECHECK_SECONDS:
            return self._blocking.blpop(keys, timeout=wait_seconds)  # type: ignore[no-any-return]
        client_id = self._blocking.client_id()
        timer = threading.Timer(wait_seconds, self._unblock, args=(client_id,))
        timer.daemon = True
        timer.start()
        try:
            return self._blocking.blpop(keys, timeout=wait_seconds + 0.5)  # type: ignore[no-any-return]
        finally:
            timer.cancel()

    def _unblock(self, client_id: int) -> None:
        try:
            with translate_errors():
                self.redis.client_unblock(client_id, error=False)
        except BrokerUnavailable:
            pass  # the BLPOP timeout ends the wait instead
