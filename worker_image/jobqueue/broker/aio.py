"""``AsyncClient``: the asyncio twin of ``Client`` for asyncio producers (FastAPI, the operator).

The hot operations (enqueue, get, wait, cancel) are native asyncio; administrative ones that page through
Redis delegate to the sync client in a thread, so both surfaces share one implementation of each rule.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any, Generic, cast

import redis.asyncio as aioredis
from typing_extensions import Unpack

from jobqueue import tracing
from jobqueue.broker.autopipeline import AsyncAutoPipeline
from jobqueue.broker.batch_enqueue import (
    is_plain,
    parent_checks,
    parse_plan_replies,
    plan_enqueue,
    raise_missing_parents,
    refuse_cross_queue_parents,
    single_plain_call,
    with_trace_context,
)
from jobqueue.broker.cancellation import build_cancel
from jobqueue.broker.client import Client, T, outcome_value
from jobqueue.broker.dead_letters import DeadLetterStats
from jobqueue.broker.enqueue import EnqueueOptions, EnqueueRequest, make_request
from jobqueue.broker.queue_admin import AsyncQueueAdmin, QueueAdmin
from jobqueue.broker.queue_depth import QueueDepth
from jobqueue.broker.redis_io import (
    ReplicaWait,
    connect_async,
    connect_cluster_node_async,
    is_cluster,
    run_script_async,
    translate_errors,
)
from jobqueue.broker.task_read import TASK_FIELDS, parse_task
from jobqueue.broker.watch import watch_async
from jobqueue.broker.worker_registry import read_worker, read_worker_page
from jobqueue.broker.workflows import WorkflowHandle, submit
from jobqueue.canvas import Canvas
from jobqueue.errors import BrokerUnavailable, ResultTimeout, TaskNotFound
from jobqueue.keys import GlobalKeys, keys_for_task
from jobqueue.models import CancelReason, Priority, TaskRecord, TaskStatus, WorkerInfo, parse_cancel_reason
from jobqueue.settings import Settings

_WAIT_RECHECK_SECONDS = 2.0


class AsyncTaskHandle(Generic[T]):
    """A reference to an enqueued task whose result is a ``T``, for asyncio code."""

    def __init__(
        self, client: AsyncClient, task_id: str, deduplicated: bool = False, enqueue_id: str | None = None
    ) -> None:
        self.client = client
        self.id = task_id
        self.deduplicated = deduplicated  # see TaskHandle.deduplicated
        self.enqueue_id = enqueue_id or task_id  # see TaskHandle.enqueue_id

    def __repr__(self) -> str:
        return f"AsyncTaskHandle({self.id!r})"

    async def get(self) -> TaskRecord:
        """The task's current record."""
        return await self.client.get_task(self.id)

    async def result(self, timeout: float | None = None) -> T:
        """Wait for the task to finish and return its result (raises like TaskHandle.result)."""
        return cast(T, outcome_value(await self.client.wait(self.id, timeout=timeout)))


class AsyncClient:
    """Asyncio client with the same operations as ``Client``."""

    def __init__(self, settings: Settings, connection: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = connection if connection is not None else connect_async(settings)
        self.global_keys = GlobalKeys(settings.key_prefix)
        self._registered_queues: set[str] = set()
        self._registering: dict[str, asyncio.Task[None]] = {}
        self._sync: Client | None = None
        # Enqueues issued concurrently share round trips (see autopipeline); with a ReplicaWait each shared
        # round trip ends with one WAIT on its connection (on Cluster: one per node, on clients of their own).
        self._pipeline = AsyncAutoPipeline(
            self.redis,
            ReplicaWait.of(settings),
            connect_node=functools.partial(connect_cluster_node_async, settings),
        )

    @property
    def sync(self) -> Client:
        """The sync client used for administrative calls (run in a worker thread)."""
        if self._sync is None:
            self._sync = Client(self.settings)
        return self._sync

    @property
    def queues(self) -> AsyncQueueAdmin:
        """Flow control of queues (see QueueAdmin), awaitable."""
        return AsyncQueueAdmin(QueueAdmin(self.sync))

    async def ping(self, timeout: float) -> None:
        """Raise BrokerUnavailable unless Redis answers within ``timeout`` seconds (readiness probes)."""
        with translate_errors():
            try:
                await asyncio.wait_for(self.redis.ping(), timeout=timeout)
            except TimeoutError as exc:
                raise BrokerUnavailable(f"Redis did not answer a PING within {timeout} s") from exc

    async def close(self) -> None:
        """Close both connection pools."""
        await self._pipeline.close()
        await self.redis.aclose()
        if self._sync is not None:
            self._sync.close()

    async def enqueue(
        self,
        name: str,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> AsyncTaskHandle:
        """Enqueue one task by name (see Client.enqueue)."""
        request = make_request(name, args, kwargs, **options)
        return (await self.enqueue_many([request]))[0]

    async def enqueue_many(self, requests: Sequence[EnqueueRequest]) -> list[AsyncTaskHandle]:
        """Enqueue validated requests (few script calls: see batch_enqueue), in a PRODUCER span when
        OpenTelemetry is installed (see Client.enqueue_many). Returns once every task is in Redis. Calls
        made concurrently in one event loop share round trips (see autopipeline); each call still gets its
        own replies and its own error."""
        if not requests or not tracing.active():
            return await self._send(requests)
        with tracing.send_span([r.queue for r in requests]) as span:
            handles = await self._send(with_trace_context(requests))
            tracing.record_sent(span, [h.id for h in handles])
        return handles

    async def _send(self, requests: Sequence[EnqueueRequest]) -> list[AsyncTaskHandle]:
        """enqueue_many without the producer span."""
        if len(requests) == 1 and is_plain(requests[0]):
            # One plain task (``enqueue``): the same single call the sync client builds.
            task_id, call = single_plain_call(self.settings, requests[0])
            if requests[0].queue not in self._registered_queues:
                await self._register_queues({requests[0].queue})
            await self._pipeline.run((call,))
            return [AsyncTaskHandle(self, task_id)]
        if is_cluster(self.redis):
            refuse_cross_queue_parents(requests)
        plan = plan_enqueue(self.settings, requests)
        checks = parent_checks(self.settings, requests)
        if checks:
            with translate_errors():
                pipe = self.redis.pipeline(transaction=False)
                for _, _, key in checks:
                    pipe.exists(key)
                raise_missing_parents(checks, await pipe.execute())
        new_queues = {r.queue for r in requests} - self._registered_queues
        if new_queues:
            await self._register_queues(new_queues)
        parsed = parse_plan_replies(plan, await self._pipeline.run(plan.calls))
        return [AsyncTaskHandle(self, r.id, r.deduplicated, r.enqueue_id) for r in parsed]

    async def _register_queues(self, new_queues: set[str]) -> None:
        """Add queues to the registry, once per client and queue (see Client._register_queues).

        Callers that arrive while a queue's registration is in flight await that same one: 100 concurrent
        first enqueues must not open 100 connections for 100 SADDs, and they resume in the order they
        arrived, so their enqueues keep that order."""
        loop = asyncio.get_running_loop()
        pending = []
        unclaimed = set()
        for queue in new_queues:
            registration = self._registering.get(queue)
            if registration is None or registration.get_loop() is not loop:
                unclaimed.add(queue)
            else:
                pending.append(registration)
        if unclaimed:
            registration = loop.create_task(self._register(unclaimed))
            for queue in unclaimed:
                self._registering[queue] = registration
            pending.append(registration)
        for registration in pending:
            await asyncio.shield(registration)

    async def _register(self, queues: set[str]) -> None:
        try:
            with translate_errors():
                await self.redis.sadd(self.global_keys.queues, *queues)
            self._registered_queues |= queues
        finally:
            for queue in queues:
                self._registering.pop(queue, None)

    async def submit_workflow(self, canvas: Canvas) -> WorkflowHandle:
        """Submit a workflow atomically (see broker.workflows.submit); its handles use the sync client."""
        return await asyncio.to_thread(submit, self.sync, canvas)

    async def get_task(self, task_id: str) -> TaskRecord:
        """The current record of a task; TaskNotFound when it is gone."""
        keys = keys_for_task(self.settings.key_prefix, task_id)
        with translate_errors():
            pipe = self.redis.pipeline(transaction=False)
            pipe.hmget(keys.task(task_id), TASK_FIELDS)
            pipe.lrange(keys.children(task_id), 0, -1)
            values, child_keys = await pipe.execute()
        record = parse_task(task_id, values, child_keys)
        if record is None:
            raise TaskNotFound(task_id)
        return record

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskRecord:
        """Wait for the task's final status on its completion channel (see Client.wait)."""
        keys = keys_for_task(self.settings.key_prefix, task_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        with translate_errors():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.done_channel(task_id))
                status: str | None = await watch_async(self.redis, self.settings, task_id)
                while True:
                    if status is None:
                        raise TaskNotFound(task_id)
                    if TaskStatus(status).is_terminal:
                        return await self.get_task(task_id)
                    remaining = _WAIT_RECHECK_SECONDS
                    if deadline is not None:
                        remaining = min(remaining, deadline - time.monotonic())
                        if remaining <= 0:
                            raise ResultTimeout(f"task {task_id} did not finish within {timeout} s")
                    await pubsub.get_message(timeout=remaining)
                    status = await self.redis.hget(keys.task(task_id), "status")
            finally:
                await pubsub.aclose()

    async def cancel(
        self, task_id: str, force: bool = False, reason: CancelReason | str = CancelReason.USER_REQUESTED
    ) -> str:
        """Cancel a task (see Client.cancel)."""
        reason_value = parse_cancel_reason(reason)
        keys = keys_for_task(self.settings.key_prefix, task_id)
        with translate_errors():
            priority = await self.redis.hget(keys.task(task_id), "priority")
        if priority is None:
            raise TaskNotFound(task_id)
        outcome, _ = await run_script_async(
            self.redis, build_cancel(self.settings, task_id, Priority(priority), reason_value, force)
        )
        if outcome == "missing":
            raise TaskNotFound(task_id)
        return str(outcome)

    async def queue_depth(self, queue: str) -> QueueDepth:
        """See Client.queue_depth."""
        return await asyncio.to_thread(self.sync.queue_depth, queue)

    async def list_dead_letters(self, queue: str, offset: int = 0, limit: int = 50) -> list[TaskRecord]:
        """See Client.list_dead_letters."""
        return await asyncio.to_thread(self.sync.list_dead_letters, queue, offset, limit)

    async def dead_letter_stats(self, queue: str) -> DeadLetterStats:
        """See Client.dead_letter_stats."""
        return await asyncio.to_thread(self.sync.dead_letter_stats, queue)

    async def replay_dead_letter(self, task_id: str, reset_retries: bool = False) -> None:
        """See Client.replay_dead_letter."""
        await asyncio.to_thread(self.sync.replay_dead_letter, task_id, reset_retries)

    async def purge_dead_letters(self, queue: str) -> int:
        """See Client.purge_dead_letters."""
        return await asyncio.to_thread(self.sync.purge_dead_letters, queue)

    async def recover_expired_leases(
        self, queues: Sequence[str] | None = None, worker_id: str = ""
    ) -> dict[str, int]:
        """See Client.recover_expired_leases."""
        return await asyncio.to_thread(self.sync.recover_expired_leases, queues, worker_id)

    async def result_ttl(self, task_id: str) -> int | None:
        """See Client.result_ttl."""
        return await asyncio.to_thread(self.sync.result_ttl, task_id)

    async def extend_result(self, task_id: str, ttl_seconds: int) -> None:
        """See Client.extend_result."""
        await asyncio.to_thread(self.sync.extend_result, task_id, ttl_seconds)

    async def delete_result(self, task_id: str) -> None:
        """See Client.delete_result."""
        await asyncio.to_thread(self.sync.delete_result, task_id)

    async def known_queues(self) -> list[str]:
        """See Client.known_queues."""
        return await asyncio.to_thread(self.sync.known_queues)

    async def oldest_ready_age(self, queue: str) -> float | None:
        """See Client.oldest_ready_age."""
        return await asyncio.to_thread(self.sync.oldest_ready_age, queue)

    async def dead_letter_alert(self, queue: str, threshold: int) -> bool:
        """See Client.dead_letter_alert."""
        return await asyncio.to_thread(self.sync.dead_letter_alert, queue, threshold)

    async def list_workers(self) -> list[WorkerInfo]:
        """See Client.list_workers."""
        return await asyncio.to_thread(self.sync.list_workers)

    async def worker_page(self, after: str | None, limit: int) -> tuple[list[WorkerInfo], int, str | None]:
        """One page of workers in id order: see jobqueue.broker.worker_registry.read_worker_page."""
        return await asyncio.to_thread(read_worker_page, self.sync.redis, self.global_keys, after, limit)

    async def get_worker(self, worker_id: str) -> WorkerInfo | None:
        """One worker, or None: see jobqueue.broker.worker_registry.read_worker."""
        return await asyncio.to_thread(read_worker, self.sync.redis, self.global_keys, worker_id)
