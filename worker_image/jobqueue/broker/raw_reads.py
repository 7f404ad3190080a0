"""Raw reads: many read-only commands in one round trip, packed and parsed by hiredis without redis-py's
per-command bookkeeping (the queue listing, /metrics and the recorder's progress read thousands of them).
On Redis Cluster the commands are grouped by the node serving their slot, one raw round trip per node,
so the replies have the same shapes as on one node."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobqueue.broker.redis_io import CONNECTION_ERRORS, checkout, checkout_async, is_cluster, translate_errors

# hiredis' stub types the command as a 1-tuple; it takes any tuple of str, bytes, int and float.
pack_command: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command


def read_many(conn: redis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """The raw replies of many read-only commands in one round trip: packed by hiredis and read without
    redis-py's per-command pipeline bookkeeping and response callbacks (about 30 µs a command here, which
    made 130,000 commands of a 10,000-queue scrape take seconds). Replies are RESP as parsed: a hash is
    a flat list, TIME a list of two strings; an error reply is returned in its place. Read-only commands
    only: a connection error is retried by re-sending the whole round trip."""
    if not commands:
        return []
    with translate_errors():
        if is_cluster(conn):
            return _read_many_cluster(cast(RedisCluster, conn), commands)
        packed = b"".join(pack_command(command) for command in commands)
        return _read_many_with_retry(conn, packed, len(commands))


# Read commands whose key is their third word (XINFO GROUPS key); keyless ones route to any node.
_KEY_AFTER_SUBCOMMAND = frozenset({"XINFO", "OBJECT", "MEMORY"})
_KEYLESS = frozenset({"TIME", "PING", "ECHO", "INFO", "DBSIZE", "LASTSAVE"})


def _routing_key(command: tuple[Any, ...]) -> Any | None:
    """The key a read command is routed by on Redis Cluster, None for a keyless one."""
    name = str(command[0]).upper()
    if name in ("EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO"):
        return command[3] if int(command[2]) > 0 else None
    if name in _KEY_AFTER_SUBCOMMAND:
        return command[2] if len(command) > 2 else None
    if name in _KEYLESS or len(command) < 2:
        return None
    return command[1]


def _by_node(conn: Any, commands: Sequence[tuple[Any, ...]]) -> dict[str, tuple[Any, list[int]]]:
    """The indexes of ``commands`` grouped by the node (sync or asyncio ClusterNode) serving each one's
    slot; keyless commands go to the default node."""
    groups: dict[str, tuple[Any, list[int]]] = {}
    for i, command in enumerate(commands):
        key = _routing_key(command)
        node = (
            conn.get_default_node()
            if key is None
            else conn.nodes_manager.get_node_from_slot(conn.keyslot(key))
        )
        groups.setdefault(node.name, (node, []))[1].append(i)
    return groups


def _moved(replies: Sequence[Any]) -> bool:
    return any(isinstance(r, ResponseError) and str(r).startswith(("MOVED", "ASK")) for r in replies)


def _read_many_cluster(conn: RedisCluster, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """read_many on Redis Cluster: one raw round trip per node holding some of the commands' slots, so
    the replies have read_many's raw shapes. A slot that moved (failover, resharding) or a node that
    went away refreshes the slot map and reads again."""
    last: Exception | None = None
    for _ in range(3):
        replies: list[Any] = [None] * len(commands)
        try:
            for node, indexes in _by_node(conn, commands).values():
                packed = b"".join(pack_command(commands[i]) for i in indexes)
                for i, reply in zip(
                    indexes, _read_many_with_retry(node.redis_connection, packed, len(indexes)), strict=True
                ):
                    replies[i] = reply
        except CONNECTION_ERRORS as exc:
            last = exc
        else:
            if not _moved(replies):
                return replies
            last = None
        conn.nodes_manager.initialize()
    if last is not None:
        raise last
    return replies


def _read_many_with_retry(conn: redis.Redis, packed: bytes, count: int) -> list[Any]:
    decode = bool(conn.connection_pool.connection_kwargs.get("decode_responses"))
    last: Exception | None = None
    for _ in range(3):  # as redis-py's own retry: a dropped idle connection is reopened and read again
        pool = conn.connection_pool
        connection = checkout(pool)
        try:
            connection.send_packed_command([packed])
            replies = _read_replies(connection, count, decode)
        except CONNECTION_ERRORS as exc:
            connection.disconnect()
            last = exc
            continue
        except BaseException:
            connection.disconnect()  # replies may be in flight: never hand it back out of step
            raise
        finally:
            pool.release(connection)
        return replies
    assert last is not None
    raise last


async def read_many_async(conn: aioredis.Redis, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """The asyncio twin of read_many."""
    if not commands:
        return []
    if is_cluster(conn):
        with translate_errors():
            return await _read_many_cluster_async(cast(AsyncRedisCluster, conn), commands)
    packed = b"".join(pack_command(command) for command in commands)
    last: Exception | None = None
    with translate_errors():
        for _ in range(3):
            pool = conn.connection_pool
            connection = await checkout_async(pool)
            try:
                await connection.send_packed_command(packed)
                replies = [await _read_reply_async(connection) for _ in commands]
            except CONNECTION_ERRORS as exc:
                await connection.disconnect()
                last = exc
                continue
            except BaseException:
                await connection.disconnect(nowait=True)
                raise
            finally:
                await pool.release(connection)
            return replies
        assert last is not None
        raise last


async def _read_many_cluster_async(conn: AsyncRedisCluster, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
    """The asyncio twin of _read_many_cluster: one raw round trip per node, on a connection of its own
    taken from the node (redis.asyncio's ClusterNode has no pool to hand read_many_async)."""
    await conn.initialize()  # a no-op once done; the slot map is filled by the first command otherwise
    last: Exception | None = None
    for _ in range(3):
        replies: list[Any] = [None] * len(commands)
        try:
            for node, indexes in _by_node(conn, commands).values():
                packed = b"".join(pack_command(commands[i]) for i in indexes)
                connection = node.acquire_connection()
                try:
                    await connection.send_packed_command(packed)
                    for i in indexes:
                        replies[i] = await _read_reply_async(connection)
                except BaseException:
                    await connection.disconnect(nowait=True)  # replies may be in flight
                    raise
                finally:
                    _release_to_node(node, connection)
        except CONNECTION_ERRORS as exc:
            last = exc
        else:
            if not _moved(replies):
                return replies
            last = None
        await conn.nodes_manager.initialize()
    if last is not None:
        raise last
    return replies


def _release_to_node(node: Any, connection: Any) -> None:
    """Give a connection back to its asyncio ClusterNode: newer redis-py has ``release()``; redis-py 5.0.x
    has no method for it, and the node's free deque is the only way back."""
    release = getattr(node, "release", None)
    if release is not None:
        release(connection)
    else:
        node._free.append(connection)


def _read_replies(connection: Any, count: int, decode: bool) -> list[Any]:
    """``count`` replies parsed by a hiredis reader of our own straight from the connection's socket:
    redis-py's ``read_response`` costs about 8 µs a reply in Python around the same C parser, most of a
    10,000-queue scrape's time. Only whole replies are consumed, so the connection stays in step."""
    reader = hiredis.Reader(replyError=ResponseError, encoding="utf-8" if decode else None)
    sock = connection._sock
    replies: list[Any] = []
    try:
        while len(replies) < count:
            reply = reader.gets()
            if reply is False:  # incomplete: read more (None is a nil reply)
                data = sock.recv(1 << 16)
                if not data:
                    raise RedisConnectionError("Redis closed the connection")
                reader.feed(data)
            else:
                replies.append(reply)
    except TimeoutError as exc:  # socket.timeout
        raise RedisTimeoutError(f"Timeout reading from Redis: {exc}") from exc
    except OSError as exc:
        raise RedisConnectionError(f"Error while reading from Redis: {exc}") from exc
    return replies


async def _read_reply_async(connection: Any) -> Any:
    try:
        return await connection.read_response()
    except ResponseError as exc:
        return exc
