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

from jobqueue.broker.scripts import SCRIPT_NAMES, ScriptCall, script_source
from jobqueue.errors import BrokerUnavailable, ConfigurationError, JobQueueError, ReplicationIncomplete
from jobqueue.redis_urls import RedisMode, RedisTarget, parse_redis_url
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
        "socket_timeout": min(5.0, settings.socket_timeout_seconds),
        "socket_connect_timeout": min(5.0, settings.socket_timeout_seconds),
    }


def _primary_options(target: RedisTarget) -> dict[str, Any]:
    """Options for the connections to the primary a Sentinel names, or to a Cluster's nodes."""
    options: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.tls:
        options["ssl"] = True
    return options


class _AsyncSentinelPool(AsyncSentinelConnectionPool):  # type: ignore[misc]  # redis-py: untyped
    """A Sentinel pool that also closes its connections to the sentinels when its client closes (redis-py
    leaves them open, and an event loop closed under them warns)."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        # Only on a full close (the client's aclose): a failover disconnects idle connections alone.
        if inuse_connections:
            for sentinel in self.sentinel_manager.sentinels:
                await sentinel.aclose()


def connect(settings: Settings, url: str | None = None, single_connection: bool = False) -> redis.Redis:
    """A sync Redis client for ``url`` (default: JOBQUEUE_REDIS_URL) of any form jobqueue.redis_urls
    accepts; no I/O until first use. Connection errors are retried briefly; through Sentinel each retry
    asks the sentinels for the current primary, so a failover needs no restart.

    ``single_connection`` pins every command to one connection (needed to know its CLIENT ID)."""
    target = parse_redis_url(url or settings.redis_url.get_secret_value())
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), 3)
    if target.mode is RedisMode.SENTINEL:
        sentinel = Sentinel(list(target.nodes), sentinel_kwargs=_sentinel_options(settings, target))
        pool = SentinelConnectionPool(
            target.service_name,
            sentinel,
            is_master=True,
            db=target.db,
            retry=retry,
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
            **_primary_options(target),
            **_options(settings),
        )
        # RedisCluster is not a redis.Redis subclass but offers the same command methods and pipelines
        # that jobqueue calls (each keyed command routed to its slot's primary); the few places that
        # reach under the client (ScriptWire, pinned connections) check for it.
        return cast(redis.Redis, cluster)
    return redis.Redis.from_url(
        target.url, retry=retry, single_connection_client=single_connection, **_options(settings)
    )


def connect_cluster_node(settings: Settings, host: str, port: int) -> redis.Redis:
    """A client pinned to one connection to one node of the Redis Cluster JOBQUEUE_REDIS_URL names (with
    its credentials and TLS), for a blocking command on keys of one slot (worker/cluster_wait.py)."""
    target = parse_redis_url(settings.redis_url.get_secret_value())
    return redis.Redis(
        host=host,
        port=port,
        single_connection_client=True,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        **_primary_options(target),
        **_options(settings),
    )


def connect_async(settings: Settings, url: str | None = None) -> aioredis.Redis:
    """An asyncio Redis client (no I/O until first use), for the same URL forms as ``connect``."""
    target = parse_redis_url(url or settings.redis_url.get_secret_value())
    retry = AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), 3)
    if target.mode is RedisMode.SENTINEL:
        sentinel = AsyncSentinel(list(target.nodes), sentinel_kwargs=_sentinel_options(settings, target))
        pool = _AsyncSentinelPool(
            target.service_name,
            sentinel,
            is_master=True,
            db=target.db,
            retry=retry,
            **_primary_options(target),
            **_options(settings),
        )
        return aioredis.Redis.from_pool(pool)  # aclose() releases the pool (and the sentinel clients)
    if target.mode is RedisMode.CLUSTER:
        cluster = AsyncRedisCluster(
            startup_nodes=[AsyncClusterNode(host, port) for host, port in target.nodes],
            retry=retry,
            **_primary_options(target),
            **_options(settings),
        )
        return cast(aioredis.Redis, cluster)  # same command surface: see connect()
    return aioredis.Redis.from_url(target.url, retry=retry, **_options(settings))


def is_cluster(conn: redis.Redis | aioredis.Redis) -> bool:
    """Whether ``conn`` is a Redis Cluster client (its commands are routed by slot, it has no one pool)."""
    return isinstance(conn, RedisCluster | AsyncRedisCluster)


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
        if parse_redis_url(settings.redis_url.get_secret_value()).mode is RedisMode.CLUSTER:
            # A cluster pipeline sends a keyless WAIT to some node, not on the connection of the writes.
            raise ConfigurationError("JOBQUEUE_REDIS_WAIT_REPLICAS is not supported on Redis Cluster yet")
        return cls(settings.redis_wait_replicas, max(1, round(settings.redis_wait_timeout_seconds * 1000)))

    def check(self, confirmed: Any) -> None:
        """ReplicationIncomplete unless WAIT's reply ``confirmed`` reaches ``replicas``."""
        if int(confirmed) < self.replicas:
            raise ReplicationIncomplete(int(confirmed), self.replicas, self.timeout_ms)


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
    with translate_errors():
        pipe = conn.pipeline(transaction=False)
        for call in calls:
            # As a raw command: redis-py's ClusterPipeline blocks its evalsha() method, while a single-slot
            # EVALSHA routed by its keys is what Redis Cluster accepts.
            pipe.execute_command("EVALSHA", script_sha(call.script), len(call.keys), *call.keys, *call.args)
        if wait is not None:
            pipe.execute_command("WAIT", wait.replicas, wait.timeout_ms)
        results: list[Any] = pipe.execute(raise_on_error=False)
        confirmed = results.pop() if wait is not None else None
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            for name in {calls[i].script for i in missing}:
                conn.script_load(script_source(name))
            # The re-run calls were not covered by the first WAIT: they get their own.
            rerun = run_scripts(conn, [calls[i] for i in missing], wait)
            for i, result in zip(missing, rerun, strict=True):
                results[i] = result
        for r in results:
            if isinstance(r, Exception):
                raise r
        if wait is not None:
            if isinstance(confirmed, Exception):
                raise confirmed
            wait.check(confirmed)
        return results


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
