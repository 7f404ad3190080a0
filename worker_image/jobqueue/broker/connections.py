"""Connections to Redis for every URL form jobqueue accepts (redis://, rediss://, Sentinel, Cluster),
each built so that it loads jobqueue's scripts whenever it (re)connects (see script_cache)."""

from __future__ import annotations

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
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from jobqueue.broker.script_cache import with_script_loading, with_script_loading_async
from jobqueue.errors import ConfigurationError
from jobqueue.redis_urls import RedisMode, RedisTarget, parse_redis_url, with_password
from jobqueue.settings import Settings


def _loading(pool: Any) -> Any:
    """``pool``, its connections made to load the scripts on every connect (see script_cache)."""
    pool.connection_class = with_script_loading(pool.connection_class)
    return pool


def _loading_async(pool: Any) -> Any:
    """The asyncio twin of ``_loading``."""
    pool.connection_class = with_script_loading_async(pool.connection_class)
    return pool


def _sync_cluster(tls: bool, **options: Any) -> RedisCluster:
    """A sync RedisCluster whose every node's connections load the scripts on connect (a promoted
    replica's cache is empty). redis-py 5.0's cluster cannot take a connection class (its nodes are built
    as ``Redis(host, port, **options)``, which refuses one): there the pools of the nodes found at start,
    replicas included, are switched after the fact and their first connections dropped, and a node found
    later relies on the NOSCRIPT fallback (script_cache)."""
    connection_class = with_script_loading(redis.SSLConnection if tls else redis.Connection)
    try:
        return RedisCluster(connection_class=connection_class, **options)
    except RedisClusterException as exc:
        if "connection_class" not in str(exc):
            raise
    cluster = RedisCluster(**options)
    for node in cluster.get_nodes():
        if node.redis_connection is not None:
            _loading(node.redis_connection.connection_pool).disconnect()
    return cluster


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
        client = redis.Redis(connection_pool=_loading(pool), single_connection_client=single_connection)
        client.auto_close_connection_pool = True  # as from_url does: close() releases the pool
        return client
    if target.mode is RedisMode.CLUSTER:
        if single_connection:
            raise ConfigurationError(
                "this process needs one pinned Redis connection (the worker's idle wait), which a Redis "
                "Cluster URL cannot give yet: run workers against a redis:// or redis+sentinel:// URL"
            )
        cluster = _sync_cluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            retry=retry,
            **({"max_connections": settings.redis_max_connections} if capped else {}),
            **_primary_options(target),
            **_options(settings),
            tls=target.tls,
        )
        # RedisCluster is not a redis.Redis subclass but offers the same command methods and pipelines
        # that jobqueue calls (each keyed command routed to its slot's primary); the few places that
        # reach under the client (ScriptWire, auto-pipelining, read_many, pinned connections) check for it.
        return cast(redis.Redis, cluster)
    options = {"retry": retry, **_standalone_options(target), **_options(settings)}
    # The pool is built first (as from_url would) so that its connection class loads the scripts before
    # a single-connection client connects.
    if capped:
        standalone = redis.BlockingConnectionPool.from_url(
            target.url, **_bounded_pool_options(settings), **options
        )
    else:
        standalone = redis.ConnectionPool.from_url(target.url, **options)
    client = redis.Redis(connection_pool=_loading(standalone), single_connection_client=single_connection)
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
    client = aioredis.Redis(
        host=host,
        port=port,
        retry=AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        **_primary_options(target),
        **_options(settings),
    )
    _loading_async(client.connection_pool)  # it sends EVALSHA (cluster_replica_wait)
    return client


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
        return aioredis.Redis.from_pool(_loading_async(pool))  # aclose() also closes the sentinel clients
    if target.mode is RedisMode.CLUSTER:
        cluster = AsyncRedisCluster(
            startup_nodes=[AsyncClusterNode(host, port) for host, port in target.nodes],
            retry=retry,
            **({"max_connections": settings.redis_max_connections} if capped else {}),
            **_primary_options(target),
            **_options(settings),
        )
        # Its nodes are built from connection_kwargs (startup nodes already, discovered ones later).
        cluster.connection_kwargs["connection_class"] = with_script_loading_async(
            cluster.connection_kwargs["connection_class"]
        )
        for node in cluster.nodes_manager.startup_nodes.values():
            node.connection_class = with_script_loading_async(node.connection_class)
        return cast(aioredis.Redis, cluster)  # same command surface: see connect()
    options = {"retry": retry, **_standalone_options(target), **_options(settings)}
    if not capped:
        client = aioredis.Redis.from_url(target.url, **options)
        _loading_async(client.connection_pool)  # no I/O yet: every connection is made after this
        return client
    bounded = aioredis.BlockingConnectionPool.from_url(
        target.url, **_bounded_pool_options(settings), **options
    )
    return aioredis.Redis.from_pool(_loading_async(bounded))


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
