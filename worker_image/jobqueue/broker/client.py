"""The synchronous client: enqueue, inspect, wait for, cancel tasks; recovery; workers.

Its read-only and maintenance parts are mixins in their own modules: queue counts (queue_depth.py), stored
results (results.py) and dead letters (dead_letters.py)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Generic, cast

import redis
from typing_extensions import TypeVar, Unpack

from jobqueue import tracing
from jobqueue.broker.autopipeline import ThreadAutoPipeline
from jobqueue.broker.batch_enqueue import (
    MAX_TASKS_PER_CALL,
    PreparedEnqueue,
    is_plain,
    parent_checks,
    parse_plan_replies,
    raise_missing_parents,
    refuse_cross_queue_parents,
    single_plain_call,
    with_trace_context,
)
from jobqueue.broker.cancellation import build_cancel
from jobqueue.broker.dead_letters import DeadLetterOperations
from jobqueue.broker.enqueue import EnqueueOptions, EnqueueRequest, make_request
from jobqueue.broker.lease_recovery import build_recover
from jobqueue.broker.queue_depth import QueueReads
from jobqueue.broker.redis_io import (
    ReplicaWait,
    connect,
    is_cluster,
    run_script,
    run_scripts,
    translate_errors,
)
from jobqueue.broker.results import ResultOperations
from jobqueue.broker.script_wire import ScriptWire
from jobqueue.broker.task_read import TASK_FIELDS, parse_task
from jobqueue.broker.watch import watch
from jobqueue.broker.worker_registry import read_workers
from jobqueue.errors import (
    ResultTimeout,
    TaskCancelled,
    TaskExpired,
    TaskFailed,
    TaskNotFound,
)
from jobqueue.keys import GlobalKeys, keys_for_task, validate_queue_name
from jobqueue.models import CancelReason, Priority, TaskRecord, TaskStatus, WorkerInfo, parse_cancel_reason
from jobqueue.settings import Settings

# While waiting on a completion channel, re-read the task this often in case a publish was lost
# (pub/sub is at-most-once: a Redis restart drops subscriptions).
_WAIT_RECHECK_SECONDS = 2.0


# The result type of a task; Any for a task enqueued by name (Client.enqueue), the function's return type
# for one enqueued through its definition (``add.enqueue(1, 2).result()`` is an int to a type checker).
T = TypeVar("T", default=Any)


class TaskHandle(Generic[T]):
    """A reference to an enqueued task whose result is a ``T``."""

    def __init__(
        self, client: Client, task_id: str, deduplicated: bool = False, enqueue_id: str | None = None
    ) -> None:
        self.client = client
        self.id = task_id
        # True when a unique enqueue found a live task with the same signature: ``id`` is that task's.
        self.deduplicated = deduplicated
        # The id this enqueue was given: ``id`` unless deduplicated (then see Client.find_duplicate).
        self.enqueue_id = enqueue_id or task_id

    def __repr__(self) -> str:
        return f"TaskHandle({self.id!r})"

    def get(self) -> TaskRecord:
        """The task's current record."""
        return self.client.get_task(self.id)

    def status(self) -> TaskStatus:
        """The task's current status."""
        return self.get().status

    def result(self, timeout: float | None = None) -> T:
        """Wait (without polling) for the task to finish and return its result.

        Raises TaskFailed (FAILED, TIMEOUT; its subclass TaskExpired for EXPIRED), TaskCancelled, or
        ResultTimeout after ``timeout`` seconds. The result is the task's return value as JSON brought it
        back (a tuple comes back a list): the type is what the function declares, trusted rather than
        checked.
        """
        return cast(T, outcome_value(self.client.wait(self.id, timeout=timeout)))

    def cancel(self, force: bool = False, reason: CancelReason | str = CancelReason.USER_REQUESTED) -> str:
        """Cancel the task; see Client.cancel."""
        return self.client.cancel(self.id, force=force, reason=reason)


def outcome_value(record: TaskRecord) -> Any:
    """The result of a finished task, or the matching exception."""
    if record.status == TaskStatus.SUCCESS:
        return record.result
    if record.status == TaskStatus.CANCELLED:
        raise TaskCancelled(record.id, record.cancel_reason)
    if record.status == TaskStatus.EXPIRED:
        raise TaskExpired(record.id)
    raise TaskFailed(record.id, record.status.value, record.error, record.traceback)


class Client(QueueReads, ResultOperations, DeadLetterOperations):
    """Talks to Redis for producers and admins. Thread-safe: redis-py pools connections, and enqueues use
    connections the client keeps out of that pool, one per thread enqueueing at the same time (see
    script_wire); a ``connection`` with a bounded pool must leave room for them."""

    def __init__(self, settings: Settings, connection: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = connection if connection is not None else connect(settings)
        self.global_keys = GlobalKeys(settings.key_prefix)
        self._registered_queues: set[str] = set()
        # Enqueues go over connections kept out of the pool (see script_wire): they are the producer's hot
        # path, and every other operation is left to redis-py's ordinary path.
        self._wire = ScriptWire(
            self.redis, ReplicaWait.of(settings), keep_idle=settings.redis_max_connections is None
        )
        self._cluster = is_cluster(self.redis)
        # One-task enqueues from many threads at once share round trips (see autopipeline); with a
        # ReplicaWait each shared round trip ends with one WAIT (see ScriptWire.run_replies).
        self._threads = ThreadAutoPipeline(self._wire)

    def close(self) -> None:
        """Release the connection pool (the enqueue connections included)."""
        self._wire.close()
        self.redis.close()

    # -- enqueue -------------------------------------------------------------------------------------

    def enqueue(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> TaskHandle:
        """Enqueue one task by name, for producers that do not import the task code. One round trip.
        Dedup and dependency options: see ``make_request``."""
        request = make_request(name, args, kwargs, **options)
        return self.enqueue_many([request])[0]

    def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle]:
        """Enqueue many validated requests in one pipelined round trip; every payload is checked first,
        so one bad request enqueues nothing (a missing parent is found by its script: ValidationError).
        Plain requests of one spec share one script call (see batch_enqueue). With OpenTelemetry
        installed, the call is a PRODUCER span whose context every message carries (jobqueue.tracing)."""
        if not requests or not tracing.active():
            return self._send(requests)
        with tracing.send_span([r.queue for r in requests]) as span:
            handles = self._send(with_trace_context(requests))
            tracing.record_sent(span, [h.id for h in handles])
        return handles

    def _send(self, requests: Sequence[EnqueueRequest]) -> list[TaskHandle]:
        """enqueue_many without the producer span."""
        if len(requests) == 1 and is_plain(requests[0]):
            # One plain task (``enqueue``, ``Task.enqueue``): the same call, built and run directly.
            task_id, call = single_plain_call(self.settings, requests[0])
            if requests[0].queue not in self._registered_queues:
                self._register_queues({requests[0].queue})
            self._threads.run_one(call)
            return [TaskHandle(self, task_id)]
        if self._cluster:
            refuse_cross_queue_parents(requests)
        prepared = PreparedEnqueue(self.settings, requests, MAX_TASKS_PER_CALL)
        checks = parent_checks(self.settings, requests)
        if checks:
            with translate_errors(), self.redis.pipeline(transaction=False) as pipe:
                for _, _, key in checks:
                    pipe.exists(key)
                raise_missing_parents(checks, pipe.execute())
        registered = self._registered_queues
        new_queues = {r.queue for r in requests if r.queue not in registered}
        if new_queues:
            self._register_queues(new_queues)
        # Both enqueue scripts are idempotent when re-sent, as the wire path requires.
        if len(requests) == 1:
            # One task (unique, dependent, own id): one call, shared with other threads' (autopipeline).
            replies = parse_plan_replies(prepared, [self._threads.run_one(next(prepared.calls()))])
        else:
            replies = parse_plan_replies(prepared, self._wire.run(prepared.calls()))
        return [TaskHandle(self, r.id, r.deduplicated, r.enqueue_id) for r in replies]

    def _register_queues(self, new_queues: set[str]) -> None:
        """Add queues to the registry, once per client and queue."""
        with translate_errors():
            # Registration is idempotent and separate from the task transition (another slot in a
            # cluster); a task whose registration was lost is still found by the worker serving it.
            self.redis.sadd(self.global_keys.queues, *new_queues)
        self._registered_queues = self._registered_queues | new_queues

    # -- inspect ---------------------------------------------------------------------------------------

    def get_task(self, task_id: str) -> TaskRecord:
        """The current record of a task; TaskNotFound once it is gone (e.g. its result TTL expired)."""
        keys = keys_for_task(self.settings.key_prefix, task_id)
        with translate_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.hmget(keys.task(task_id), TASK_FIELDS)
            pipe.lrange(keys.children(task_id), 0, -1)
            values, child_keys = pipe.execute()
        record = parse_task(task_id, values, child_keys)
        if record is None:
            raise TaskNotFound(task_id)
        return record

    def wait(self, task_id: str, timeout: float | None = None) -> TaskRecord:
        """Block until the task reaches a final status; subscribes to its completion channel, no polling."""
        keys = keys_for_task(self.settings.key_prefix, task_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        with translate_errors():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(keys.done_channel(task_id))
                status: str | None = watch(self.redis, self.settings, task_id)
                while True:
                    if status is None:
                        raise TaskNotFound(task_id)
                    if TaskStatus(status).is_terminal:
                        return self.get_task(task_id)
                    remaining = _WAIT_RECHECK_SECONDS
                    if deadline is not None:
                        remaining = min(remaining, deadline - time.monotonic())
                        if remaining <= 0:
                            raise ResultTimeout(f"task {task_id} did not finish within {timeout} s")
                    pubsub.get_message(timeout=remaining)
                    status = self.redis.hget(keys.task(task_id), "status")
            finally:
                pubsub.close()

    # -- cancel ----------------------------------------------------------------------------------------

    def cancel(
        self, task_id: str, force: bool = False, reason: CancelReason | str = CancelReason.USER_REQUESTED
    ) -> str:
        """Cancel a task. Waiting (queued, delayed, retrying, pending) → removed atomically, CANCELLED.
        Running → a cancel request: graceful (the task sees ``ctx.is_cancelled()``) or force (its process
        is killed). Returns 'cancelled', 'requested' or 'finished' (already final; nothing changed)."""
        reason_value = parse_cancel_reason(reason)
        keys = keys_for_task(self.settings.key_prefix, task_id)
        with translate_errors():
            priority = self.redis.hget(keys.task(task_id), "priority")
        if priority is None:
            raise TaskNotFound(task_id)
        outcome, _status = run_script(
            self.redis, build_cancel(self.settings, task_id, Priority(priority), reason_value, force)
        )
        if outcome == "missing":
            raise TaskNotFound(task_id)
        return str(outcome)

    # -- recovery, workers ---------------------------------------------------------------------

    def recover_expired_leases(
        self, queues: Sequence[str] | None = None, worker_id: str = ""
    ) -> dict[str, int]:
        """Requeue tasks whose lease expired (or every lease of ``worker_id``, a worker known dead).
        Idempotent; returns {'requeued': n, 'dead_lettered': m}."""
        requeued = dead = 0
        for counts in self.recover_expired_leases_by_queue(queues, worker_id).values():
            requeued += counts["requeued"]
            dead += counts["dead_lettered"]
        return {"requeued": requeued, "dead_lettered": dead}

    def recover_expired_leases_by_queue(
        self, queues: Sequence[str] | None = None, worker_id: str = ""
    ) -> dict[str, dict[str, int]]:
        """``recover_expired_leases`` with the counts of each queue: {queue: {'requeued', 'dead_lettered'}}.
        One round trip for every queue (and one more per 1,000 leases a dead worker held beyond the first)."""
        names = list(queues) if queues is not None else self.known_queues()
        counts = {validate_queue_name(q): {"requeued": 0, "dead_lettered": 0} for q in names}
        pending = list(counts)
        # A dead worker's leases come from its held set, a bounded batch per call: call again for the
        # queues where some are left (the expiry reaper always reports none left). Each call empties its
        # batch from the set, so this ends; the cap only guards against a worker that is not dead after all
        # and keeps leasing.
        for _ in range(100):
            if not pending:
                break
            replies = run_scripts(self.redis, [build_recover(self.settings, q, worker_id) for q in pending])
            for queue, result in zip(pending, replies, strict=True):
                counts[queue]["requeued"] += int(result[0])
                counts[queue]["dead_lettered"] += int(result[1])
            pending = [q for q, result in zip(pending, replies, strict=True) if int(result[2]) > 0]
        return counts

    def list_workers(self) -> list[WorkerInfo]:
        """Workers that heartbeated recently, with their reported state."""
        return read_workers(self.redis, self.global_keys)

    def request_drain(self, worker_id: str, *, exit: bool = True) -> None:
        """Ask a worker to stop fetching and finish what it runs (used before scaling down).

        ``exit=True``: it then deregisters and exits 0 (the local supervisor's processes). ``exit=False``
        (the operator's pods): it stays up, idle, reporting DRAINING, until its pod is deleted (SIGTERM)
        or :meth:`cancel_drain` lets it fetch again; a worker that exits inside a Deployment's pod would
        only be restarted by the kubelet.
        """
        with translate_errors():
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(self.global_keys.worker_control(worker_id), "drain", "1" if exit else HOLD)
            pipe.expire(self.global_keys.worker_control(worker_id), 3600)
            pipe.execute()

    def cancel_drain(self, worker_id: str) -> None:
        """Call off a drain requested with ``exit=False``: the worker fetches again at its next heartbeat
        (a worker already exiting is not brought back)."""
        with translate_errors():
            self.redis.hdel(self.global_keys.worker_control(worker_id), "drain")


# The control hash's drain value for "stop fetching, finish, stay up" (see Client.request_drain).
HOLD = "hold"
