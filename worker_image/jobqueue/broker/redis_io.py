"""The boundary with redis-py: connections, EVALSHA with reload, and translation of driver errors."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import hiredis
import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from jobqueue.broker.scripts import SCRIPT_NAMES, ScriptCall, script_source
from jobqueue.errors import BrokerUnavailable, JobQueueError
from jobqueue.settings import Settings

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


@functools.cache
def script_sha(name: str) -> str:
    """SHA1 of a script, as Redis computes it for EVALSHA (cached: scripts never change at run time)."""
    return hashlib.sha1(script_source(name).encode(), usedforsecurity=False).hexdigest()


class _ErrorTranslation:
    """Turns redis-py errors into jobqueue errors at the boundary. A class rather than a generator-based
    context manager: it is entered on every client operation (twice per enqueue), and the generator
    version cost about 0.9 us per use against 0.15 us. Holds no state, so one instance serves all threads
    and nested uses."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Returning (None) lets any other exception, jobqueue's own included, propagate unchanged.
        if exc is None or isinstance(exc, JobQueueError):
            return
        if isinstance(exc, CONNECTION_ERRORS):
            raise BrokerUnavailable(f"Redis unavailable: {exc}") from exc
        if isinstance(exc, RedisError):
            raise JobQueueError(f"Redis error: {exc}") from exc


_TRANSLATION = _ErrorTranslation()


def translate_errors() -> contextlib.AbstractContextManager[None]:
    """Turn redis-py errors into jobqueue errors at the boundary (``with translate_errors(): ...``)."""
    return _TRANSLATION


def _options(settings: Settings) -> dict[str, Any]:
    """Connection options shared by the sync and asyncio clients."""
    return {
        "decode_responses": True,
        "socket_timeout": settings.socket_timeout_seconds,
        "socket_connect_timeout": min(5.0, settings.socket_timeout_seconds),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 30,
        # RESP2 on every redis-py major: redis-py 8 speaks RESP3 unless told otherwise, and the raw replies
        # read without redis-py's parsing (the recorder's XREADGROUP, XINFO GROUPS for /metrics) are
        # RESP2-shaped (a RESP3 map made the recorder fail on its first read).
        "protocol": 2,
    }


def _bounded_pool_options(settings: Settings) -> dict[str, Any]:
    """Options of a BlockingConnectionPool capped at JOBQUEUE_REDIS_MAX_CONNECTIONS: a caller that finds
    every connection in use waits for one (up to the socket timeout, then a connection error the loops
    back off from) instead of failing at once as redis-py's default pool does past its cap."""
    return {"max_connections": settings.redis_max_connections, "timeout": settings.socket_timeout_seconds}


def connect(settings: Settings, url: str | None = None, single_connection: bool = False) -> redis.Redis:
    """A sync Redis client (no I/O until first use). Connection errors are retried briefly. Its pool is
    capped by ``settings.redis_max_connections`` when set (unbounded otherwise, redis-py's default).

    ``single_connection`` pins every command to one connection (needed to know its CLIENT ID)."""
    url = url or settings.redis_url.get_secret_value()
    options = {"retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 3), **_options(settings)}
    if settings.redis_max_connections is None:
        return redis.Redis.from_url(url, single_connection_client=single_connection, **options)
    pool = redis.BlockingConnectionPool.from_url(url, **_bounded_pool_options(settings), **options)
    client = redis.Redis(connection_pool=pool, single_connection_client=single_connection)
    client.auto_close_connection_pool = True  # as from_url does: close() disconnects the pool
    return client


def connect_async(settings: Settings, url: str | None = None) -> aioredis.Redis:
    """An asyncio Redis client (no I/O until first use), its pool capped like ``connect``'s."""
    url = url or settings.redis_url.get_secret_value()
    options = {"retry": AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), 3), **_options(settings)}
    if settings.redis_max_connections is None:
        return aioredis.Redis.from_url(url, **options)
    pool = aioredis.BlockingConnectionPool.from_url(url, **_bounded_pool_options(settings), **options)
    return aioredis.Redis.from_pool(pool)


def run_script(conn: redis.Redis, call: ScriptCall) -> Any:
    """EVALSHA one script call, loading the script first if Redis does not know it (e.g. after a restart)."""
    sha = script_sha(call.script)
    with translate_errors():
        try:
            return conn.evalsha(sha, len(call.keys), *call.keys, *call.args)
        except NoScriptError:
            conn.script_load(script_source(call.script))
            return conn.evalsha(sha, len(call.keys), *call.keys, *call.args)


def run_scripts(conn: redis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """Run many script calls in one round trip (a non-transactional pipeline).

    Calls that failed with NOSCRIPT did not run, so they alone are re-run after loading the scripts.
    """
    if not calls:
        return []
    if len(calls) == 1:
        # A pipeline of one costs about 10% more per call than a plain EVALSHA (one-by-one enqueue,
        # an ack batch of one) for the same single round trip.
        return [run_script(conn, calls[0])]
    results = run_scripts_replies(conn, calls)
    with translate_errors():
        for r in results:
            if isinstance(r, Exception):
                raise r
    return results


def run_scripts_replies(conn: redis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
    """Like run_scripts, but a call's error reply is returned in its place (a ``ResponseError``), not
    raised: the replies of calls made for different callers (auto-pipelining) stay apart. Connection
    errors still raise (BrokerUnavailable) for the whole exchange."""
    if not calls:
        return []
    with translate_errors():
        pipe = conn.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(script_sha(call.script), len(call.keys), *call.keys, *call.args)
        results: list[Any] = pipe.execute(raise_on_error=False)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            for name in {calls[i].script for i in missing}:
                conn.script_load(script_source(name))
            for i in missing:
                try:
                    results[i] = conn.evalsha(
                        script_sha(calls[i].script), len(calls[i].keys), *calls[i].keys, *calls[i].args
                    )
                except ResponseError as exc:
                    results[i] = exc
        return results


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
    packed = b"".join(pack_command(command) for command in commands)
    with translate_errors():
        return _read_many_with_retry(conn, packed, len(commands))


def _read_many_with_retry(conn: redis.Redis, packed: bytes, count: int) -> list[Any]:
    decode = bool(conn.connection_pool.connection_kwargs.get("decode_responses"))
    last: Exception | None = None
    for _ in range(3):  # as redis-py's own retry: a dropped idle connection is reopened and read again
        pool = conn.connection_pool
        try:
            connection = pool.get_connection()
        except TypeError:  # redis-py before 5.3 requires a command name
            connection = pool.get_connection("PING")
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
    packed = b"".join(pack_command(command) for command in commands)
    last: Exception | None = None
    with translate_errors():
        for _ in range(3):
            pool = conn.connection_pool
            connection = await pool.get_connection()
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


def translated(error: BaseException) -> BaseException:
    """The jobqueue error a caller sees for a driver error (as ``translate_errors`` raises it), chained
    to it; jobqueue's own errors and anything else unchanged. A fresh exception per call: one error
    reply shared by many awaiting callers must not share one traceback."""
    if isinstance(error, JobQueueError):
        return error
    if isinstance(error, CONNECTION_ERRORS):
        fresh: BaseException = BrokerUnavailable(f"Redis unavailable: {error}")
    elif isinstance(error, RedisError):
        fresh = JobQueueError(f"Redis error: {error}")
    else:
        return error
    fresh.__cause__ = error
    return fresh


async def run_script_async(conn: aioredis.Redis, call: ScriptCall) -> Any:
    """The asyncio twin of run_script."""
    sha = script_sha(call.script)
    with translate_errors():
        try:
            return await conn.evalsha(sha, len(call.keys), *call.keys, *call.args)
        except NoScriptError:
            await conn.script_load(script_source(call.script))
            return await conn.evalsha(sha, len(call.keys), *call.keys, *call.args)


def load_all_scripts(conn: redis.Redis) -> None:
    """SCRIPT LOAD every script, so pipelines of EVALSHA never meet NOSCRIPT in normal operation."""
    with translate_errors():
        for name in SCRIPT_NAMES:
            conn.script_load(script_source(name))
