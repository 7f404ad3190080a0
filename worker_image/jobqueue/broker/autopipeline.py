"""Auto-pipelining: script calls issued concurrently by many callers share round trips (the technique
ioredis calls auto-pipelining; a database would call it group commit).

A caller that finds no round trip in flight sends its calls at once; calls issued while a round trip is
in flight (asyncio: also those issued in the same event-loop iteration) wait for it to end and then go
together as the next pipeline of EVALSHA. Every caller still waits for its own replies, so a returned
enqueue is as durable as before, and gets its own error: an error reply, or NOSCRIPT handled for the
calls that met it (see script_cache: re-run unless a later call on the same keys ran; else
ScriptCacheLost), concerns only the caller whose call it was. A connection error that outlasts redis-py's
retries ends every call of that round trip with BrokerUnavailable (each may or may not have run, as for
any call whose reply was lost); the next round trip starts afresh.

Only idempotent-when-re-sent scripts go through here (both enqueue scripts are: see their headers),
because a round trip that met a connection error is re-sent whole by redis-py's retry.

One round trip at a time per client: with a 100-call pipeline on one connection, Redis runs the calls
back to back and the client parses 100 replies per read, which is what makes it cheaper per call than
100 connections each carrying one call (and it holds one connection instead of 100).

On Redis Cluster, and with JOBQUEUE_REDIS_WAIT_REPLICAS, a round trip goes through redis-py's pipeline
instead of a kept connection (routed node by node on Cluster); a ReplicaWait adds one WAIT at the end of
each shared round trip, on its connection (on Cluster one per node written to, on clients of their own:
cluster_replica_wait), so every caller of it returns only once the replicas hold its call (or all of
them get ReplicationIncomplete).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobqueue.broker.batch_enqueue import coalesce_calls, spread_replies
from jobqueue.broker.cluster_replica_wait import AsyncClusterReplicaWait
from jobqueue.broker.redis_io import (
    ReplicaWait,
    check_replicas,
    checkout_async,
    evalsha_command,
    fewest_confirmed,
    is_cluster,
    load_all_scripts_async,
    routed_calls,
    script_sha,
    translated,
)
from jobqueue.broker.script_cache import is_noscript, plan_reruns
from jobqueue.broker.script_wire import ScriptWire
from jobqueue.broker.scripts import ScriptCall
from jobqueue.errors import JobQueueError

# hiredis' stub types the command as a 1-tuple; it takes any tuple of str, bytes, int and float.
_pack: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command

# One caller's calls and the future its replies are delivered to.
_Waiting = tuple[Sequence[ScriptCall], "asyncio.Future[list[Any]]"]


def _caller_error(exc: BaseException) -> BaseException:
    """What a waiting caller raises when the round trip carrying its call failed: the translated error, or
    for an interruption (cancellation, KeyboardInterrupt) of whoever was sending, an error of its own."""
    if isinstance(exc, Exception):
        return translated(exc)
    return JobQueueError(f"enqueue interrupted: {exc!r}")


def _first_error(replies: Sequence[Any]) -> BaseException | None:
    for reply in replies:
        if isinstance(reply, Exception):
            return translated(reply)
    return None


class AsyncAutoPipeline:
    """Auto-pipelining for one asyncio Redis client (see the module docstring)."""

    def __init__(
        self,
        conn: aioredis.Redis,
        wait: ReplicaWait | None = None,
        connect_node: Callable[[str, int], aioredis.Redis] | None = None,
    ) -> None:
        """``connect_node`` opens a client to one Redis Cluster node (host, port): on Cluster a WAIT goes
        node by node on clients of their own (see cluster_replica_wait); required there with ``wait``."""
        self._redis = conn
        # A Redis Cluster client has no one pool (a connection per node), and a WAIT must follow the
        # calls on their connection: both take redis-py's pipeline (_ordinary_exchange), one WAIT after
        # each shared round trip.
        self._ordinary = wait is not None or is_cluster(conn)
        self._wait = wait
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[_Waiting] = []
        self._sender: asyncio.Task[None] | None = None
        self._connection: Any = None  # the connection round trips go on (see _exchange)
        self._cluster_wait: AsyncClusterReplicaWait | None = None
        if wait is not None and is_cluster(conn):
            if connect_node is None:
                raise TypeError("a ReplicaWait on Redis Cluster needs connect_node")
            self._cluster_wait = AsyncClusterReplicaWait(conn, connect_node)

    async def run(self, calls: Sequence[ScriptCall]) -> list[Any]:
        """The replies of ``calls`` (sent in order, together with other callers' calls); raises the
        first error reply among them as a JobQueueError, or BrokerUnavailable."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A client reused by a later event loop (asyncio.run twice): the old loop's futures and
            # sender cannot be awaited from this one.
            self._loop, self._waiting, self._sender, self._connection = loop, [], None, None
            if self._cluster_wait is not None:
                self._cluster_wait.forget()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._waiting.append((calls, future))
        if self._sender is None:
            # Started in the next loop iteration: every call issued in this one joins its first pipeline.
            self._sender = loop.create_task(self._send_while_waiting())
        return await future

    async def _send_while_waiting(self) -> None:
        batch: list[_Waiting] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                await self._send(batch)
                batch = []
        except BaseException as exc:
            # The sender must never end leaving a caller waiting forever (e.g. cancelled at loop shutdown).
            for _, future in [*batch, *self._waiting]:
                if not future.done():
                    future.set_exception(_caller_error(exc))
            self._waiting = []
            raise
        finally:
            self._sender = None

    async def _send(self, batch: list[_Waiting]) -> None:
        merged, where = coalesce_calls([call for calls, _ in batch for call in calls])
        try:
            replies = spread_replies(await self._pipeline(merged), where)
        except Exception as exc:  # every call of the round trip shares its fate
            for _, future in batch:
                if not future.done():
                    future.set_exception(translated(exc))
            return
        start = 0
        for calls, future in batch:
            mine = replies[start : start + len(calls)]
            start += len(calls)
            if future.done():  # the caller was cancelled while its call was in flight
                continue
            error = _first_error(mine)
            if error is None:
                future.set_result(mine)
            else:
                future.set_exception(error)

    async def _pipeline(self, calls: list[ScriptCall]) -> list[Any]:
        """Every call's reply (an error reply in its place), NOSCRIPT resolved."""
        replies = await self._exchange(calls)
        if any(is_noscript(r) for r in replies):
            # Those calls did not run (the scripts were flushed under a live connection): load every
            # script and re-run, in their order and in one more round trip, those that may run now.
            await load_all_scripts_async(self._redis)
            missing = plan_reruns(calls, replies)
            rerun = await self._exchange([calls[i] for i in missing]) if missing else []
            for i, reply in zip(missing, rerun, strict=True):
                replies[i] = reply
        return replies

    async def _exchange(self, calls: list[ScriptCall]) -> list[Any]:
        """The calls written on the kept connection in one write, packed by hiredis (redis.asyncio packs
        commands in Python: about 400 µs per enqueue call measured here, most of a concurrent producer's
        CPU), then every reply read. A connection or timeout error hands the round trip to redis-py's
        own pipeline, which retries with backoff (re-sending calls that may have run: see the module
        docstring)."""
        if self._ordinary:
            return await self._ordinary_exchange(calls)
        packed = b"".join(
            _pack(("EVALSHA", script_sha(c.script), len(c.keys), *c.keys, *c.args)) for c in calls
        )
        connection = self._connection
        try:
            if connection is None:
                # Kept for the client's life (one round trip at a time needs one): a pool checkout per
                # round trip costs a lock and a non-blocking read, which one-by-one callers pay per call.
                connection = self._connection = await checkout_async(self._redis.connection_pool, "EVALSHA")
            await connection.send_packed_command(packed, check_health=True)
            replies = [await _read(connection) for _ in calls]
        except (RedisConnectionError, RedisTimeoutError):
            # redis-py has already disconnected it (its next use reconnects); the ordinary path retries.
            return await self._ordinary_exchange(calls)
        except BaseException:
            # Between a write and its reads (e.g. cancelled): replies may be in flight, so the connection
            # is closed (and reopened by its next use) rather than read out of step.
            if connection is not None:
                await connection.disconnect(nowait=True)
            raise
        return replies

    async def close(self) -> None:
        """Hand the kept connection back to the pool (the client then closes the pool)."""
        connection, self._connection = self._connection, None
        if connection is not None and self._loop is asyncio.get_running_loop():
            await self._redis.connection_pool.release(connection)
        if self._cluster_wait is not None and self._loop is asyncio.get_running_loop():
            await self._cluster_wait.close()

    async def _ordinary_exchange(self, calls: list[ScriptCall]) -> list[Any]:
        """The round trip on redis-py's pipeline (its retries, its Cluster routing), with the ReplicaWait's
        WAIT after the calls on the pipeline's connection. NOSCRIPT is resolved here, so that the WAIT is
        checked once every call ran: ReplicationIncomplete fails the whole round trip (every call of it
        ran on the primary but may not be on the replicas)."""
        replies, confirmed = await self._pipelined(calls)
        if any(is_noscript(r) for r in replies):
            await load_all_scripts_async(self._redis)
            missing = plan_reruns(calls, replies)
            if missing:
                rerun, confirmed_rerun = await self._pipelined([calls[i] for i in missing])
                for i, reply in zip(missing, rerun, strict=True):
                    replies[i] = reply
                check_replicas(self._wait, confirmed_rerun)
        check_replicas(self._wait, confirmed)
        return replies

    async def _pipelined(self, calls: list[ScriptCall]) -> tuple[list[Any], Any]:
        if self._cluster_wait is not None and self._wait is not None:
            # One pipeline per node, each ending with its WAIT; the fewest replicas any node confirmed.
            routed, confirmations = await self._cluster_wait.run(routed_calls(calls), self._wait.command)
            return routed, fewest_confirmed(confirmations)
        pipe = self._redis.pipeline(transaction=False)
        for call in calls:
            pipe.execute_command(*evalsha_command(call))
        if self._wait is not None:
            pipe.execute_command(*self._wait.command)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies, (replies.pop() if self._wait is not None else None)


async def _read(connection: Any) -> Any:
    """One reply; an error reply is returned, not raised (the whole reply was read: still in step)."""
    try:
        return await connection.read_response()
    except ResponseError as exc:
        return exc


class _Entry:
    """One waiting thread's call, its outcome, and how it is woken."""

    __slots__ = ("call", "error", "event", "leads", "reply")

    def __init__(self, call: ScriptCall) -> None:
        self.call = call
        self.reply: Any = None
        self.error: BaseException | None = None
        self.leads = False  # woken to send the next round trip rather than with its outcome
        self.event = threading.Event()


class ThreadAutoPipeline:
    """Auto-pipelining across the threads of one sync client (see the module docstring).

    A thread that finds no round trip in flight sends its call alone on the fast path of the wire. Threads
    arriving while it is in flight queue up; when it ends, the first of them is woken to send every queued
    call as one exchange and then wakes the others with their replies, so one thread at a time talks to
    Redis and the rest sleep on an event of their own (no thundering herd on one condition)."""

    def __init__(self, wire: ScriptWire) -> None:
        self._wire = wire
        self._lock = threading.Lock()
        self._busy = False
        self._queued: list[_Entry] = []

    def run_one(self, call: ScriptCall) -> Any:
        """The reply of one call; raises its error reply as a JobQueueError, or BrokerUnavailable."""
        with self._lock:
            if not self._busy:
                self._busy = True
                entry = None
            else:
                entry = _Entry(call)
                self._queued.append(entry)
        if entry is None:
            try:
                return self._wire.run_one(call)
            finally:
                self._hand_over()
        entry.event.wait()
        if entry.leads:
            try:
                self._send_queued()
            finally:
                self._hand_over()
        if entry.error is not None:
            raise entry.error
        return entry.reply

    def _send_queued(self) -> None:
        with self._lock:
            batch, self._queued = self._queued, []
        merged, where = coalesce_calls([e.call for e in batch])
        try:
            replies = spread_replies(self._wire.run_replies(merged), where)
        except BaseException as exc:  # the whole exchange failed: every call of it shares the outcome
            for entry in batch:
                entry.error = _caller_error(exc)
        else:
            for entry, reply in zip(batch, replies, strict=True):
                if isinstance(reply, Exception):
                    entry.error = translated(reply)
                else:
                    entry.reply = reply
        for entry in batch:
            if not entry.leads:
                entry.event.set()

    def _hand_over(self) -> None:
        """End this thread's turn: wake the first queued thread to send the next round trip, if any."""
        with self._lock:
            if not self._queued:
                self._busy = False
                return
            head = self._queued[0]
        head.leads = True
        head.event.set()
