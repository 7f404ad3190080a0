"""The boundary with redis-py: connections, EVALSHA with reload, and translation of driver errors."""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from jobqueue.broker.cluster_replica_wait import ClusterReplicaWait, RoutedCall
from jobqueue.broker.scripts import SCRIPT_NAMES, ScriptCall, script_source
from jobqueue.errors import BrokerUnavailable, ConfigurationError, JobQueueError, ReplicationIncomplete
from jobqueue.redis_urls import RedisMode, RedisTarget, parse_redis_url, with_password
from jobqueue.settings import Settings

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
CLUSTER_DOWN_ERRORS = (ClusterDownError, SlotNotCoveredError, TryAgainError)


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
        if isinstance(exc, CLUSTER_DOWN_ERRORS):
            # A Cluster failover or resharding in progress: as transient as a lost connection.
            raise BrokerUnavailable(f"Redis Cluster unavailable: {exc}") from exc
        if isinstance(exc, RedisError | RedisClusterException):
            # RedisClusterException (e.g. a command a cluster pipeline refuses) derives from Exception only.
            raise JobQueueError(f"Redis error: {exc}") from exc


_TRANSLATION = _ErrorTranslation()


def translate_errors() -> contextlib.AbstractContextManager[None]:
    """Turn redis-py errors into jobqueue errors at the boundary (``with translate_errors(): ...``)."""
    return _TRANSLATION


def _options(settings: Settings) -> dict[str, Any]:
    """Connection options shared by the sync and asyncio clients."""
    return {
        "decode_responses": True,
        # RESP2 on every redis-py version: 8 speaks RESP3 by default, whose maps, sets and push messages
        # change reply shapes the raw readers (read_many, the script wire, the recorder's XREADGROUP)
        # and parsers rely on (a RESP3 map made the recorder fail on its first read).
        "protocol": 2,
        "socket_timeout": settings.socket_timeout_seconds,
        "socket_connect_timeout": min(5.0, settings.socket_timeout_seconds),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 30,
    }


def _sentinel_options(settings: Settings, target: RedisTarget) -> dict[str, Any]:
    """Options for the connections to the sentinels themselves (not to the primary they name)."""
    return {
        "password": target.sentinel_password,
        "ssl": target.tls,
        "protocol": 2,  # as every other connection (see _options)
        "socket_timeout": min(5.0, settings.socket_timeout_seconds),
        "socket_connect_timeout": min(5.0, settings.socket_timeout_seconds),
    }


def _target(settings: Settings, url: str | None) -> RedisTarget:
    """The deployment to connect to: ``url``, or JOBQUEUE_REDIS_URL with JOBQUEUE_REDIS_PASSWORD (which
    belongs to that URL only, never to another one a caller names)."""
    if url:
        return parse_redis_url(url)
    password = settings.redis_password.get_secret_value() if settings.redis_password is not None else None
    return with_password(parse_redis_url(settings.redis_url.get_secret_value()), password)


def _standalone_options(target: RedisTarget) -> dict[str, Any]:
    """The password given apart from a redis:// URL (redis-py lets the URL's own win; with_password
    refused one in both places)."""
    return {"password": target.password} if target.password is not None else {}


def _primary_options(target: RedisTarget) -> dict[str, Any]:
    """Options for the connections to the primary a Sentinel names, or to a Cluster's nodes."""
    options: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.tls:
        options["ssl"] = True
    return options


def _bounded_pool_options(settings: Settings) -> dict[str, Any]:
    """Options of a BlockingConnectionPool capped at JOBQUEUE_REDIS_MAX_CONNECTIONS: a caller that finds
    every connection in use waits for one (up to the socket timeout, then a connection error the loops
    back off from) instead of failing at once as redis-py's default pool does past its cap."""
    return {"max_connections": settings.redis_max_connections, "timeout": settings.socket_timeout_seconds}


class _BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):  # type: ignore[misc]
    """A Sentinel pool with JOBQUEUE_REDIS_MAX_CONNECTIONS' blocking cap: Sentinel's primary discovery
    and failover checks (SentinelConnectionPool) over BlockingConnectionPool's wait for a free
    connection. redis-py has no such class; the two only share ConnectionPool, so the MRO composes them."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        """All connections, or (as Sentinel asks when the primary moved) the idle ones only:
        BlockingConnectionPool's own disconnect takes no argument and always closes all of them."""
        if inuse_connections:
            super().disconnect()
            return
        with self.pool.mutex:  # the LifoQueue of idle connections (None: a free slot not yet connected)
            idle = [connection for connection in self.pool.queue if connection is not None]
        for connection in idle:
            connection.disconnect()


class _AsyncSentinelPool(AsyncSentinelConnectionPool):  # type: ignore[misc]  # redis-py: untyped
    """A Sentinel pool that also closes its connections to the sentinels when its client closes (redis-py
    leaves them open, and an event loop closed under them warns)."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        # Only on a full close (the client's aclose): a failover disconnects idle connections alone.
        if inuse_connections:
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()


class _AsyncBlockingSentinelPool(_AsyncSentinelPool, aioredis.BlockingConnectionPool):  # type: ignore[misc]
    """The asyncio twin of _BlockingSentinelPool."""


def connect(settings: Settings, url: str | None = None, single_connection: bool = False) -> redis.Redis:
    """A sync Redis client for ``url`` (default: JOBQUEUE_REDIS_URL) of any form jobqueue.redis_urls
    accepts; no I/O until first use. Connection errors are retried briefly; through Sentinel each retry
    asks the sentinels for the current primary, so a failover needs no restart.

    With ``settings.redis_max_connections`` set, a standalone or Sentinel client's pool is capped and a
    caller past the cap waits for a free connection; a Cluster client caps each node's pool, where
    redis-py fails a call past the cap at once (a connection error: BrokerUnavailable) instead of waiting.

    ``single_connection`` pins every command to one connection (needed to know its CLIENT ID)."""
    target = _target(settings, url)
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 3)
    capped = settings.redis_max_connections is not None
    if target.mode is RedisMode.SENTINEL:
        sentinel = Sentinel(list(target.nodes), sentinel_kwargs=_sentinel_options(settings, target))
        pool = (_BlockingSentinelPool if capped else SentinelConnectionPool)(
            target.service_name,
            sentinel,
            is_master=True,
            db=target.db,
            retry=retry,
            **(_bounded_pool_options(settings) if capped else {}),
            **_primary_options(target),
            **_options(settings),
        )
        client = redis.Redis(connection_pool=pool, single_connection_client=single_connection)
        client.auto_close_connection_pool = True  # as from_url does: close() releases the pool
        return client
    if target.mode is RedisMode.CLUSTER:
        if single_connection:
            raise ConfigurationError(
                "this process needs one pinned Redis connection (the worker's idle wait), which a Redis "
                "Cluster URL cannot give yet: run workers against a redis:// or redis+sentinel:// URL"
            )
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            retry=retry,
            **({"max_connections": settings.redis_max_connections} if capped else {}),
            **_primary_options(target),
            **_options(settings),
        )
        # RedisCluster is not a redis.Redis subclass but offers the same command methods and pipelines
        # that jobqueue calls (each keyed command routed to its slot's primary); the few places that
        # reach under the client (ScriptWire, auto-pipelining, read_many, pinned connections) check for it.
        return cast(redis.Redis, cluster)
    options = {"retry": retry, **_standalone_options(target), **_options(settings)}
    if not capped:
        return redis.Redis.from_url(target.url, single_connection_client=single_connection, **options)
    bounded = redis.BlockingConnectionPool.from_url(target.url, **_bounded_pool_options(settings), **options)
    client = redis.Redis(connection_pool=bounded, single_connection_client=single_connection)
    client.auto_close_connection_pool = True  # as from_url does: close() disconnects the pool
    return client


def connect_cluster_node(settings: Settings, host: str, port: int) -> redis.Redis:
    """A client pinned to one connection to one node of the Redis Cluster JOBQUEUE_REDIS_URL names (with
    its credentials and TLS), for a blocking command on keys of one slot (worker/cluster_wait.py)."""
    target = _target(settings, None)
    return redis.Redis(
        host=host,
        port=port,
        single_connection_client=True,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        **_primary_options(target),
        **_options(settings),
    )


def connect_cluster_node_async(settings: Settings, host: str, port: int) -> aioredis.Redis:
    """An asyncio client of one node of the Redis Cluster JOBQUEUE_REDIS_URL names (its credentials and
    TLS), for commands that must share a connection on that node (a WAIT after writes)."""
    target = parse_redis_url(settings.redis_url.get_secret_value())
    return aioredis.Redis(
        host=host,
        port=port,
        retry=AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        **_primary_options(target),
        **_options(settings),
    )


def connect_async(settings: Settings, url: str | None = None) -> aioredis.Redis:
    """An asyncio Redis client (no I/O until first use), for the same URL forms as ``connect`` and capped
    as it is."""
    target = _target(settings, url)
    retry = AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), 3)
    capped = settings.redis_max_connections is not None
    if target.mode is RedisMode.SENTINEL:
        sentinel = AsyncSentinel(list(target.nodes), sentinel_kwargs=_sentinel_options(settings, target))
        pool = (_AsyncBlockingSentinelPool if capped else _AsyncSentinelPool)(
            target.service_name,
            sentinel,
            is_master=True,
            db=target.db,
            retry=retry,
            **(_bounded_pool_options(settings) if capped else {}),
            **_primary_options(target),
            **_options(settings),
        )
        return aioredis.Redis.from_pool(pool)  # aclose() releases the pool (and the sentinel clients)
    if target.mode is RedisMode.CLUSTER:
        cluster = AsyncRedisCluster(
            startup_nodes=[AsyncClusterNode(host, port) for host, port in target.nodes],
            retry=retry,
            **({"max_connections": settings.redis_max_connections} if capped else {}),
            **_primary_options(target),
            **_options(settings),
        )
        return cast(aioredis.Redis, cluster)  # same command surface: see connect()
    options = {"retry": retry, **_standalone_options(target), **_options(settings)}
    if not capped:
        return aioredis.Redis.from_url(target.url, **options)
    bounded = aioredis.BlockingConnectionPool.from_url(
        target.url, **_bounded_pool_options(settings), **options
    )
    return aioredis.Redis.from_pool(bounded)


def is_cluster(conn: redis.Redis | aioredis.Redis) -> bool:
    """Whether ``conn`` is a Redis Cluster client (its commands are routed by slot, it has no one pool)."""
    return isinstance(conn, RedisCluster | AsyncRedisCluster)


def checkout(pool: Any, command: str = "PING") -> Any:
    """A connection from a redis-py pool on every supported version: before 5.3 ``get_connection``
    requires a command name (later versions deprecate passing one). Give it back with ``pool.release``."""
    try:
        return pool.get_connection()
    except TypeError:
        return pool.get_connection(command)


async def checkout_async(pool: Any, command: str = "PING") -> Any:
    """The asyncio twin of ``checkout``."""
    try:
        return await pool.get_connection()
    except TypeError:
        return await pool.get_connection(command)


@dataclass(frozen=True)
class ReplicaWait:
    """Opt-in durability (JOBQUEUE_REDIS_WAIT_REPLICAS): after the scripts, WAIT on the same connection
    until ``replicas`` replicas hold every write so far, for at most ``timeout_ms``."""

    replicas: int
    timeout_ms: int

    @classmethod
    def of(cls, settings: Settings) -> ReplicaWait | None:
        """The wait the settings ask for, or None when they ask for none (the default)."""
        if settings.redis_wait_replicas <= 0:
            return None
        return cls(settings.redis_wait_replicas, max(1, round(settings.redis_wait_timeout_seconds * 1000)))

    @property
    def command(self) -> tuple[str, int, int]:
        """The WAIT command sent after the calls."""
        return ("WAIT", self.replicas, self.timeout_ms)

    def check(self, confirmed: Any) -> None:
        """ReplicationIncomplete unless WAIT's reply ``confirmed`` reaches ``replicas``."""
        if int(confirmed) < self.replicas:
            raise ReplicationIncomplete(int(confirmed), self.replicas, self.timeout_ms)


def evalsha_command(call: ScriptCall) -> tuple[Any, ...]:
    """``call`` as the raw EVALSHA command (a cluster pipeline blocks redis-py's evalsha() method, while a
    single-slot EVALSHA routed by its keys is what Redis Cluster accepts)."""
    return ("EVALSHA", script_sha(call.script), len(call.keys), *call.keys, *call.args)


def routed_calls(calls: Sequence[ScriptCall]) -> list[RoutedCall]:
    """The calls as EVALSHA commands routed by their first key (every key of a call shares its slot)."""
    return [RoutedCall(evalsha_command(call), call.keys[0]) for call in calls]


def fewest_confirmed(confirmations: Sequence[Any]) -> Any:
    """One WAIT reply standing for several (one per Cluster node): the first error reply, else the
    fewest replicas any node confirmed; None when no node ran a call."""
    errors = [c for c in confirmations if isinstance(c, Exception)]
    if errors:
        return errors[0]
    return min(int(c) for c in confirmations) if confirmations else None


def run_script(conn: redis.Redis, call: ScriptCall, wait: ReplicaWait | None = None) -> Any:
    """EVALSHA one script call, loading the script first if Redis does not know it (e.g. after a restart).
    With ``wait``, the call and a WAIT go in one pipeline (one connection, so WAIT covers the call)."""
    if wait is not None:
        return run_scripts(conn, [call], wait)[0]
    sha = script_sha(call.script)
    with translate_errors():
        try:
            return conn.evalsha(sha, len(call.keys), *call.keys, *call.args)
        except NoScriptError:
            conn.script_load(script_source(call.script))
            return conn.evalsha(sha, len(call.keys), *call.keys, *call.args)


def run_scripts(conn: redis.Redis, calls: Sequence[ScriptCall], wait: ReplicaWait | None = None) -> list[Any]:
    """Run many script calls in one round trip (a non-transactional pipeline).

    Calls that failed with NOSCRIPT did not run, so they alone are re-run after loading the scripts.
    With ``wait``, a WAIT follows the calls on the pipeline's connection; ReplicationIncomplete when fewer
    replicas confirmed in time (the calls did run on the primary).
    """
    if not calls:
        return []
    if len(calls) == 1 and wait is None:
        # A pipeline of one costs about 10% more per call than a plain EVALSHA (one-by-one enqueue,
        # an ack batch of one) for the same single round trip.
        return [run_script(conn, calls[0])]
    results = run_scripts_replies(conn, calls, wait)
    with translate_errors():
        for r in results:
            if isinstance(r, Exception):
                raise r
    return results


def run_scripts_replies(
    conn: redis.Redis, calls: Sequence[ScriptCall], wait: ReplicaWait | None = None
) -> list[Any]:
    """Like run_scripts, but a call's error reply is returned in its place (a ``ResponseError``), not
    raised: the replies of calls made for different callers (auto-pipelining) stay apart. Connection
    errors still raise (BrokerUnavailable) for the whole exchange, and so does a ``wait`` that fewer
    replicas than asked confirmed (ReplicationIncomplete: one WAIT covers every call of the exchange)."""
    if not calls:
        return []
    with translate_errors():
        results, confirmed = _pipelined_scripts(conn, calls, wait)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            for name in {calls[i].script for i in missing}:
                conn.script_load(script_source(name))
            # Those calls did not run: re-run in one more round trip, with a WAIT of their own (the first
            # one did not cover them). A second NOSCRIPT (scripts flushed again) stays an error in place.
            rerun, confirmed_rerun = _pipelined_scripts(conn, [calls[i] for i in missing], wait)
            for i, result in zip(missing, rerun, strict=True):
                results[i] = result
            check_replicas(wait, confirmed_rerun)
        # Checked once every call ran: a ReplicationIncomplete means all of them did, on the primary.
        check_replicas(wait, confirmed)
        return results


def _pipelined_scripts(
    conn: redis.Redis, calls: Sequence[ScriptCall], wait: ReplicaWait | None
) -> tuple[list[Any], Any]:
    """The replies of one pipeline of the calls, and WAIT's reply (None without ``wait``). On Cluster with
    a ``wait``, one pipeline per node, each ending with its WAIT (cluster_replica_wait), and the fewest
    replicas any node confirmed."""
    if wait is not None and is_cluster(conn):
        replies, confirmations = ClusterReplicaWait(conn).run(routed_calls(calls), wait.command)
        return replies, fewest_confirmed(confirmations)
    pipe = conn.pipeline(transaction=False)
    for call in calls:
        pipe.execute_command(*evalsha_command(call))
    if wait is not None:
        pipe.execute_command(*wait.command)
    results: list[Any] = pipe.execute(raise_on_error=False)
    return results, (results.pop() if wait is not None else None)


def check_replicas(wait: ReplicaWait | None, confirmed: Any) -> None:
    """Raise WAIT's error reply, or ReplicationIncomplete when it confirmed too few replicas; nothing
    without a ``wait``, or without a reply (on Cluster: every call was redirected, so none ran and there
    is nothing to wait for; their error replies are the caller's outcome)."""
    if wait is None or confirmed is None:
        return
    if isinstance(confirmed, Exception):
        raise confirmed
    wait.check(confirmed)


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
