"""A lean wire path for the producer's script calls: EVALSHA written straight onto connections the client
keeps, every call of an exchange written before any reply is read.

``redis.Redis.evalsha`` costs about 20-50 µs more client CPU per call than the same pre-built call written
on a connection directly (micro-benchmarks here: 92-105 against 57-59 µs, 44-56 against 24-30 µs at
another time; see docs/benchmarks.md): a pool checkout and
release under a lock, a non-blocking read that checks the checked-out connection holds no stray data, the
retry wrapper and the response callbacks. A producer enqueueing one task at a time pays that on every
call. ``ScriptWire`` keeps its own connections (taken from the client's pool once) and talks to them with
redis-py's ``Connection.send_packed_command`` / ``read_response``, so connecting, AUTH, TLS, timeouts and
health checks stay redis-py's. What it adds:

- a connection is never reused after an exception in the middle of an exchange: redis-py disconnects it
  on any error while sending or reading, and the next use reconnects, so a half-read reply can never be
  read as the answer to another call;
- in a forked child the parent's connections are dropped, not shared;
- ``NOSCRIPT`` replies (scripts flushed under a live connection: a new connection loads them before its
  first call) load every script and re-run the calls that did not run, unless a later call on the same
  keys ran already (see script_cache: never re-run out of order); other error replies are raised once
  every reply has been read, so the connection stays in step;
- a connection or timeout error hands the whole exchange to ``redis_io.run_scripts``, redis-py's ordinary
  path with its retries. That re-sends calls that may have run already, exactly as redis-py's retry does:
  only scripts that are idempotent when re-sent may be run here (both enqueue scripts are: see their
  headers).

Every call is written before any reply is read, and a generator of calls is consumed one call at a
time: the client builds call k+1 while Redis runs call k, and waits for Redis once per exchange. Reading
each reply before writing the next call-after-next was tried: on this shared 2-core machine every extra
blocking read is a wake-up that may wait for a core, and it measured slower than one wait per batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import hiredis
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobqueue.broker.redis_io import (
    ReplicaWait,
    checkout,
    is_cluster,
    load_all_scripts,
    run_script,
    run_scripts_replies,
    script_sha,
    translate_errors,
)
from jobqueue.broker.script_cache import is_noscript, plan_reruns
from jobqueue.broker.scripts import ScriptCall


class ScriptWire:
    """Runs idempotent script calls over connections kept out of the pool. Thread-safe: each exchange
    takes a connection of its own (``list.pop`` / ``append`` are atomic), making one when none is idle."""

    def __init__(self, conn: redis.Redis, wait: ReplicaWait | None = None, keep_idle: bool = True) -> None:
        self._redis = conn
        # A Redis Cluster client has a pool per node, and a WAIT must follow the calls on their
        # connection: both take redis-py's ordinary path (whose cost is small next to WAIT's round trip
        # to the replicas).
        self._ordinary = wait is not None or is_cluster(conn)
        self._wait = wait
        self._pool: Any = None if self._ordinary else conn.connection_pool
        self._idle: list[Any] = []
        self._pid = os.getpid()
        # Under a connection cap (JOBQUEUE_REDIS_MAX_CONNECTIONS), connections kept idle here would count
        # against it while nobody else could use them: after a burst of concurrent enqueues they could be
        # all of them, and every other operation of the client would wait for a free one in vain. With
        # ``keep_idle`` False each connection goes back to the pool after its exchange instead.
        self._keep_idle = keep_idle

    def _checkout(self) -> Any:
        if self._pid != os.getpid():
            # A forked child: those sockets are the parent's. Forget them (closing would be the parent's
            # business); the pool resets itself on its next use in this process.
            self._idle = []
            self._pid = os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            pass
        return checkout(self._pool, "EVALSHA")

    def _put_back(self, connection: Any) -> None:
        if self._keep_idle:
            self._idle.append(connection)
        else:
            self._pool.release(connection)

    def close(self) -> None:
        """Hand the kept connections back to the pool (``Client.close`` then disconnects the pool)."""
        idle, self._idle = self._idle, []
        if self._pid == os.getpid():
            for connection in idle:
                self._pool.release(connection)

    def run(self, calls: Iterable[ScriptCall]) -> list[Any]:
        """Every call's reply, in order. ``calls`` may be a generator: each call is built only once the
        one before it has been written, so building overlaps with Redis running the previous call.
        The first error reply is raised once every reply has been read."""
        replies = self.run_replies(calls)
        with translate_errors():
            for reply in replies:
                if isinstance(reply, Exception):  # an error reply, or ScriptCacheLost
                    raise reply
        return replies

    def run_replies(self, calls: Iterable[ScriptCall]) -> list[Any]:
        """Like ``run``, but an error reply is returned in its call's place (a ``ResponseError``), not
        raised, so calls made for different callers (see autopipeline) keep their errors apart. NOSCRIPT
        is resolved here; a connection or timeout error that outlasts the retries raises
        BrokerUnavailable for the whole exchange. With a ReplicaWait, one WAIT follows the whole exchange
        (ReplicationIncomplete for all of it when too few replicas confirmed)."""
        if self._ordinary:
            return run_scripts_replies(self._redis, list(calls), self._wait)
        pending = iter(calls)
        sent: list[ScriptCall] = []
        with translate_errors():
            try:
                connection = self._checkout()
            except (RedisConnectionError, RedisTimeoutError):
                # Redis unreachable right now: the ordinary path retries with backoff, then raises.
                return run_scripts_replies(self._redis, list(pending))
            try:
                replies = self._exchange(connection, pending, sent)
            except (RedisConnectionError, RedisTimeoutError):
                # redis-py has already disconnected it; the ordinary path retries with backoff.
                self._put_back(connection)
                return run_scripts_replies(self._redis, [*sent, *pending])
            except BaseException:
                # Raised between a write and its read (e.g. while building the next call): replies may be
                # in flight, so the connection is closed rather than reused out of step.
                connection.disconnect()
                self._put_back(connection)
                raise
            self._put_back(connection)
            if any(is_noscript(r) for r in replies):
                # Load every script and re-run, in one exchange and in order, the calls that did not run
                # and may run now without coming after a later call on their keys (see script_cache).
                load_all_scripts(self._redis)
                missing = plan_reruns(sent, replies)
                if missing:
                    rerun = run_scripts_replies(self._redis, [sent[i] for i in missing])
                    for i, reply in zip(missing, rerun, strict=True):
                        replies[i] = reply
            return replies

    def run_one(self, call: ScriptCall) -> Any:
        """``run([call])[0]`` without the generator and reply-list bookkeeping (the one-by-one producer's
        path); the same fallbacks: NOSCRIPT loads and re-runs, a connection or timeout error goes to the
        ordinary path with its retries, any other exception closes the connection."""
        if self._ordinary:
            return run_script(self._redis, call, self._wait)
        with translate_errors():
            try:
                connection = self._checkout()
            except (RedisConnectionError, RedisTimeoutError):
                return run_script(self._redis, call)
            try:
                connection.send_packed_command(pack_call(connection, call), check_health=True)
                reply = connection.read_response()
            except NoScriptError:
                # The reply was read: the connection is in step. The call did not run, and it was the
                # only one of its exchange: load every script and run it.
                self._put_back(connection)
                load_all_scripts(self._redis)
                return run_script(self._redis, call)
            except ResponseError:
                self._put_back(connection)
                raise
            except (RedisConnectionError, RedisTimeoutError):
                # redis-py has already disconnected it; the ordinary path retries with backoff.
                self._put_back(connection)
                return run_script(self._redis, call)
            except BaseException:
                # Between the write and the read (e.g. KeyboardInterrupt): a reply may be in flight.
                connection.disconnect()
                self._put_back(connection)
                raise
            self._put_back(connection)
            return reply

    @staticmethod
    def _exchange(connection: Any, calls: Iterable[ScriptCall], sent: list[ScriptCall]) -> list[Any]:
        for call in calls:
            # In ``sent`` before the write, so a failed write is re-run by the fallback path.
            sent.append(call)
            connection.send_packed_command(
                pack_call(connection, call),
                # One health check per exchange, before its first write (a PING only after 30 s idle).
                check_health=len(sent) == 1,
            )
        return [_read(connection) for _ in sent]


def pack_call(connection: Any, call: ScriptCall) -> Any:
    """The EVALSHA of ``call`` in the wire protocol. hiredis packs it directly when the connection encodes
    as hiredis does (UTF-8, strict), the default: redis-py's own ``pack_command`` wraps the same hiredis
    call in a per-argument encoding pass that cost 25-40 µs of a 13-key enqueue (hiredis alone: about
    6 µs), about a sixth of the one-by-one producer's CPU per task before the send. Anything hiredis
    refuses (a bool, a lone surrogate) goes to redis-py's path, which raises as it always did."""
    command = ("EVALSHA", script_sha(call.script), len(call.keys), *call.keys, *call.args)
    encoder = connection.encoder
    if encoder.encoding == "utf-8" and encoder.encoding_errors == "strict":
        try:
            # hiredis types its argument as a 1-tuple; any length of str / int / float / bytes is packed.
            return [hiredis.pack_command(command)]  # type: ignore[arg-type]
        except (TypeError, ValueError):  # UnicodeEncodeError is a ValueError
            pass
    return connection.pack_command(*command)


def _read(connection: Any) -> Any:
    """One reply; an error reply is returned, not raised, so the replies after it are still read."""
    try:
        return connection.read_response()
    except ResponseError as exc:
        return exc
