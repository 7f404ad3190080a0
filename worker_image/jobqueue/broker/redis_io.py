"""The boundary with redis-py: script calls by EVALSHA (NOSCRIPT resolved without reordering an
exchange: see script_cache), and translation of driver errors. Connections are built in connections.py."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import (
    AuthenticationError,
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobqueue.broker.cluster_replica_wait import ClusterReplicaWait, RoutedCall
from jobqueue.broker.connections import (
    checkout,
    checkout_async,
    connect,
    connect_async,
    connect_cluster_node,
    connect_cluster_node_async,
    is_cluster,
)
from jobqueue.broker.script_cache import is_noscript, plan_reruns, script_load_commands, script_sha
from jobqueue.broker.scripts import ScriptCall
from jobqueue.errors import BrokerUnavailable, JobQueueError, ReplicationIncomplete
from jobqueue.settings import Settings

# Connections moved to connections.py; their names stay importable from here, where callers found them.
__all__ = [
    "checkout",
    "checkout_async",
    "connect",
    "connect_async",
    "connect_cluster_node",
    "connect_cluster_node_async",
    "is_cluster",
    "script_sha",
]

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
CLUSTER_DOWN_ERRORS = (ClusterDownError, SlotNotCoveredError, TryAgainError)


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
        if isinstance(exc, AuthenticationError):
            # The one connection error a retry cannot cure: say where the credentials go.
            raise BrokerUnavailable(
                f"Redis refused the connection: {exc} (set JOBQUEUE_REDIS_PASSWORD, or the user and "
                "password in JOBQUEUE_REDIS_URL: redis://USER:PASSWORD@HOST:6379/0)"
            ) from exc
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
    """EVALSHA one script call; if Redis does not know the script (e.g. its scripts were flushed), load
    every script (see script_cache) and run the call again. With ``wait``, the call and a WAIT go in one
    pipeline (one connection, so WAIT covers the call)."""
    if wait is not None:
        return run_scripts(conn, [call], wait)[0]
    sha = script_sha(call.script)
    with translate_errors():
        try:
            return conn.evalsha(sha, len(call.keys), *call.keys, *call.args)
        except NoScriptError:
            # The only call of its exchange: nothing ran after it, so running it now keeps every order.
            load_all_scripts(conn)
            return conn.evalsha(sha, len(call.keys), *call.keys, *call.args)


def run_scripts(conn: redis.Redis, calls: Sequence[ScriptCall], wait: ReplicaWait | None = None) -> list[Any]:
    """Run many script calls in one round trip (a non-transactional pipeline).

    Calls that met NOSCRIPT did not run: every script is loaded again and they are re-run, unless a
    later call on the same keys ran already (then ScriptCacheLost, a BrokerUnavailable: see script_cache).
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
        if any(is_noscript(r) for r in results):
            load_all_scripts(conn)
            # Those calls did not run: re-run the ones rerun_plan allows in one more round trip, with a
            # WAIT of their own (the first one did not cover them). A second NOSCRIPT (scripts flushed
            # again) stays an error in place.
            missing = plan_reruns(calls, results)
            if missing:
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
            await load_all_scripts_async(conn)
            return await conn.evalsha(sha, len(call.keys), *call.keys, *call.args)


def load_all_scripts(conn: redis.Redis) -> None:
    """Load every script, in one MULTI/EXEC (on Cluster: each script on every primary), so no client
    finds some of them known and others not (see script_cache)."""
    with translate_errors():
        if is_cluster(conn):
            for command in script_load_commands():
                conn.execute_command(*command)
            return
        pipe = conn.pipeline(transaction=True)
        for command in script_load_commands():
            pipe.execute_command(*command)
        pipe.execute()


async def load_all_scripts_async(conn: aioredis.Redis) -> None:
    """The asyncio twin of load_all_scripts."""
    with translate_errors():
        if is_cluster(conn):
            for command in script_load_commands():
                await conn.execute_command(*command)
            return
        pipe = conn.pipeline(transaction=True)
        for command in script_load_commands():
            pipe.execute_command(*command)
        await pipe.execute()
