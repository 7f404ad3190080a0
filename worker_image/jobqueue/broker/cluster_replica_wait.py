"""JOBQUEUE_REDIS_WAIT_REPLICAS on Redis Cluster: each node's writes followed by a WAIT on their connection.

WAIT blocks until the replicas hold every write made *on the connection it runs on*. redis-py's cluster
client sends a keyless WAIT to every primary on connections of their own (and sums the replies), and its
pipeline routes each command separately, so neither makes a WAIT follow the writes. Here the calls of
one exchange are grouped by the primary owning their slot (each script call is single-slot: every key
shares its queue's ``{tag}``), and each group goes to its node as one plain pipeline, ``EVALSHA ...
WAIT``, on one connection of that node.

Redirections are followed here, not by redis-py (a node's own client does not follow them):

- ``MOVED`` (the slot has a new owner: a failover, or a resharding that finished): the call did not run;
  the slot map is reloaded from the cluster and the call is sent again, to the new owner, with a WAIT of
  its own there;
- ``ASK`` (the slot is being migrated and the call's keys are already on the target): the call did not
  run; it is sent to the node the error names, after ``ASKING``, with a WAIT there.

- ``TRYAGAIN`` (the call's keys are split between the two nodes of a migration: a script that creates a
  key cannot run anywhere until the slot's migration ends): the call did not run; it is sent again after
  a pause, from its owner in the slot map (ASK, then MOVED once the migration has ended).

Up to ``MAX_REDIRECTS`` rounds, with pauses growing from 50 ms (about 1.5 s in all); a call still
redirected after them keeps its error reply, which the caller reports as BrokerUnavailable (transient),
as it does ``CLUSTERDOWN``. A connection error reloads the slot map (so
the next call finds the promoted replica) and is raised for the whole exchange, as on one node.

The caller builds the commands (``EVALSHA`` with its keys) and checks the WAIT replies; this module only
routes. Without a WAIT the sync side is the same routing, one round trip per node: the recorder's
reads of many queues' streams use it on Cluster (record/cluster_reads.py). The sync side uses the node
clients redis-py's ``RedisCluster`` keeps (``ClusterNode.redis_connection``); the asyncio
``RedisCluster`` keeps no such client, so the asyncio side opens one client per node through
``connect_node`` (the same options as every other connection) and closes them with ``close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import AskError, MovedError, RedisClusterException, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Rounds of redirections followed per exchange: one MOVED after a failover or a finished migration, one
# ASK during a migration, and a margin for a slot map that was already stale again when reloaded.
MAX_REDIRECTS = 5
# First pause before a round that follows a TRYAGAIN or a second MOVED, doubled each round (a slot's
# migration or the cluster's view of a failover takes a moment to settle; the rounds bound the total).
_REDIRECT_PAUSE = 0.05

Command = tuple[Any, ...]


@dataclass(frozen=True)
class RoutedCall:
    """One command and the key whose slot decides its node (every key of a script call shares it)."""

    command: Command
    routing_key: str


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    asking: bool  # an ASK redirection: ASKING goes before the call on that node


def _group(
    calls: Sequence[RoutedCall], pending: Sequence[int], owner: Callable[[str], tuple[str, int]],
    asked: dict[int, tuple[str, int]],
) -> dict[_Target, list[int]]:  # fmt: skip
    """The pending calls' indexes grouped by the node they go to."""
    groups: dict[_Target, list[int]] = {}
    for i in pending:
        if i in asked:
            host, port = asked[i]
            target = _Target(host, port, asking=True)
        else:
            host, port = owner(calls[i].routing_key)
            target = _Target(host, port, asking=False)
        groups.setdefault(target, []).append(i)
    return groups


def _pipeline_commands(calls: Sequence[RoutedCall], indexes: Sequence[int], target: _Target,
                       wait: Command | None) -> list[Command]:  # fmt: skip
    commands: list[Command] = []
    for i in indexes:
        if target.asking:
            commands.append(("ASKING",))
        commands.append(calls[i].command)
    if wait is not None:
        commands.append(wait)
    return commands


def _spread(
    replies: list[Any], indexes: Sequence[int], target: _Target, into: list[Any], waited: bool = True
) -> Any:
    """Each call's reply into its place (ASKING's OKs dropped); returns WAIT's reply (None if not
    ``waited``)."""
    confirmed = replies.pop() if waited else None
    mine = replies[1::2] if target.asking else replies
    for i, reply in zip(indexes, mine, strict=True):
        into[i] = reply
    return confirmed


def _ran_any(replies: list[Any], indexes: Sequence[int]) -> bool:
    """Whether any call of a node's group ran there: a group all redirected (MOVED, ASK, TRYAGAIN) wrote
    nothing, and its WAIT's reply says nothing about the calls (a node that has just become a replica
    answers WAIT with an error)."""
    return any(not isinstance(replies[i], AskError | TryAgainError) for i in indexes)


def _redirections(replies: list[Any], pending: Sequence[int]) -> tuple[list[int], bool, bool]:
    """The calls to send again; whether any was MOVED (reload the slot map); whether any met TRYAGAIN
    (pause first)."""
    # MovedError derives from AskError in redis-py.
    again = [i for i in pending if isinstance(replies[i], AskError | TryAgainError)]
    moved = any(isinstance(replies[i], MovedError) for i in again)
    return again, moved, any(isinstance(replies[i], TryAgainError) for i in again)


def _pause(round_: int, moved: bool, busy: bool) -> float:
    """Seconds to wait before the next round: none for a first redirection, which is followed at once."""
    if busy or (moved and round_):
        return float(_REDIRECT_PAUSE * 2**round_)
    return 0.0


def _asked(replies: list[Any], again: Sequence[int]) -> dict[int, tuple[str, int]]:
    asked: dict[int, tuple[str, int]] = {}
    for i in again:
        error = replies[i]
        # MovedError derives from AskError in redis-py: only a real ASK sends the call with ASKING.
        if isinstance(error, AskError) and not isinstance(error, MovedError):
            asked[i] = (str(error.host), int(error.port))
    return asked


class ClusterReplicaWait:
    """Runs script calls on a sync ``RedisCluster``, each node's group followed by WAIT on its connection."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster

    def _owner(self, key: str) -> tuple[str, int]:
        node = self._cluster.nodes_manager.get_node_from_slot(self._cluster.keyslot(key))
        return str(node.host), int(node.port)

    def _node_client(self, target: _Target) -> redis.Redis:
        node = self._cluster.nodes_manager.get_node(host=target.host, port=target.port)
        if node is None or node.redis_connection is None:
            # A node the slot map does not know yet (an ASK to a node added since it was loaded).
            self._reload()
            node = self._cluster.nodes_manager.get_node(host=target.host, port=target.port)
            if node is None or node.redis_connection is None:
                raise RedisConnectionError(f"Redis Cluster node {target.host}:{target.port} is unknown")
        client: redis.Redis = node.redis_connection
        return client

    def _reload(self) -> None:
        self._cluster.nodes_manager.initialize()

    def run(self, calls: Sequence[RoutedCall], wait: Command | None) -> tuple[list[Any], list[Any]]:
        """Every call's reply in order (an error reply in its place) and the WAIT reply of every node
        group sent (one per node per round; none without ``wait``: then this is only the routing, one
        round trip per node, as the recorder's reads use it). Connection errors raise, after the slot
        map is reloaded."""
        replies: list[Any] = [None] * len(calls)
        confirmations: list[Any] = []
        pending = list(range(len(calls)))
        asked: dict[int, tuple[str, int]] = {}
        for round_ in range(MAX_REDIRECTS + 1):
            for target, indexes in _group(calls, pending, self._owner, asked).items():
                pipe = self._node_client(target).pipeline(transaction=False)
                for command in _pipeline_commands(calls, indexes, target, wait):
                    pipe.execute_command(*command)
                try:
                    out: list[Any] = pipe.execute(raise_on_error=False)
                except (RedisConnectionError, RedisTimeoutError):
                    # The node is gone (a failover): the next exchange must find its successor.
                    self._reload_quietly()
                    raise
                confirmed = _spread(out, indexes, target, replies, waited=wait is not None)
                if _ran_any(replies, indexes):
                    confirmations.append(confirmed)
            pending, moved, busy = _redirections(replies, pending)
            if not pending or round_ == MAX_REDIRECTS:
                break
            asked = _asked(replies, pending)
            time.sleep(_pause(round_, moved, busy))
            if moved:
                self._reload()
        return replies, confirmations if wait is not None else []

    def _reload_quietly(self) -> None:
        # Every startup node unreachable: the connection error being raised says enough.
        with contextlib.suppress(redis.RedisError, RedisClusterException):
            self._reload()


class AsyncClusterReplicaWait:
    """The asyncio twin of ``ClusterReplicaWait`` over an asyncio ``RedisCluster``; ``connect_node``
    opens a client to one node (host, port) with the process's connection options."""

    def __init__(self, cluster: Any, connect_node: Callable[[str, int], aioredis.Redis]) -> None:
        self._cluster = cluster
        self._connect_node = connect_node
        self._nodes: dict[tuple[str, int], aioredis.Redis] = {}

    async def _owner(self, key: str) -> tuple[str, int]:
        if not self._cluster.nodes_manager.slots_cache:
            await self._cluster.initialize()  # a client that has not run a command yet
        node = self._cluster.nodes_manager.get_node_from_slot(self._cluster.keyslot(key))
        return str(node.host), int(node.port)

    def _node_client(self, target: _Target) -> aioredis.Redis:
        address = (target.host, target.port)
        client = self._nodes.get(address)
        if client is None:
            client = self._nodes[address] = self._connect_node(target.host, target.port)
        return client

    async def _reload(self) -> None:
        await self._cluster.nodes_manager.initialize()

    async def run(self, calls: Sequence[RoutedCall], wait: Command) -> tuple[list[Any], list[Any]]:
        """See ``ClusterReplicaWait.run``."""
        replies: list[Any] = [None] * len(calls)
        confirmations: list[Any] = []
        pending = list(range(len(calls)))
        asked: dict[int, tuple[str, int]] = {}
        for round_ in range(MAX_REDIRECTS + 1):
            owners = {calls[i].routing_key: await self._owner(calls[i].routing_key) for i in pending}
            groups = _group(calls, pending, owners.__getitem__, asked)
            sends: list[Awaitable[list[Any]]] = []
            for target, indexes in groups.items():
                pipe = self._node_client(target).pipeline(transaction=False)
                for command in _pipeline_commands(calls, indexes, target, wait):
                    pipe.execute_command(*command)
                sends.append(pipe.execute(raise_on_error=False))
            # Nodes in parallel: each WAIT blocks only its own connection.
            outs = await asyncio.gather(*sends, return_exceptions=True)
            failed = next((o for o in outs if isinstance(o, BaseException)), None)
            if failed is not None:
                if isinstance(failed, RedisConnectionError | RedisTimeoutError):
                    await self._reload_quietly()
                raise failed
            for (target, indexes), out in zip(groups.items(), outs, strict=True):
                assert isinstance(out, list)
                confirmed = _spread(out, indexes, target, replies)
                if _ran_any(replies, indexes):
                    confirmations.append(confirmed)
            pending, moved, busy = _redirections(replies, pending)
            if not pending or round_ == MAX_REDIRECTS:
                break
            asked = _asked(replies, pending)
            await asyncio.sleep(_pause(round_, moved, busy))
            if moved:
                await self._reload()
        return replies, confirmations

    async def _reload_quietly(self) -> None:
        # Every startup node unreachable: the connection error being raised says enough.
        with contextlib.suppress(redis.RedisError, RedisClusterException):
            await self._reload()

    def forget(self) -> None:
        """Drop the node clients without closing them: they belong to an event loop that has ended (a
        client reused by a later ``asyncio.run``), whose connections cannot be awaited from this one."""
        self._nodes = {}

    async def close(self) -> None:
        """Close the node clients opened so far."""
        nodes, self._nodes = self._nodes, {}
        for client in nodes.values():
            await client.aclose()
