"""A failover to a replica whose script cache is empty (Redis 7 neither replicates nor persists SCRIPT
LOAD) must not reorder an enqueue_many: on Sentinel and on Cluster, the first enqueue after the failover
used to load only its own script, and the next mixed batch ran its plain calls ahead of the unique and
dependent ones that met NOSCRIPT (jobqueue.broker.script_cache)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest
from redis_topologies import ClusterTopology, SentinelTopology, ha_settings

from jobqueue import AsyncClient, Client, TaskStatus
from jobqueue.broker.enqueue import EnqueueRequest, make_request
from jobqueue.broker.script_cache import script_sha
from jobqueue.broker.scripts import SCRIPT_NAMES
from jobqueue.errors import BrokerUnavailable
from jobqueue.keys import QueueKeys

pytestmark = pytest.mark.timeout(240)

QUEUE = "after"
T = TypeVar("T")


def _retrying(action: Callable[[], T], timeout: float = 60.0) -> T:
    """``action``'s result once the failover lets it through (BrokerUnavailable until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except BrokerUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _mixed_batch(parent: str) -> list[EnqueueRequest]:
    return [
        make_request("a", [0], queue=QUEUE),
        make_request("a", [1, uuid.uuid4().hex], queue=QUEUE, unique=True),  # a fresh signature
        make_request("a", [2], queue=QUEUE),
        make_request("a", [3], queue=QUEUE, depends_on=[parent]),
        make_request("a", [4], queue=QUEUE, unique_key=f"k{uuid.uuid4().hex}"),
        make_request("a", [5], queue=QUEUE),
    ]


def _enqueue_after_failover_in_order(client: Client, warm: set[str]) -> None:
    # One call alone first: with the old code it loaded only its own script on the new primary.
    parent = _retrying(lambda: client.enqueue("a", ["parent"], queue=QUEUE).id)
    ids = [h.id for h in _retrying(lambda: client.enqueue_many(_mixed_batch(parent)))]
    assert client.get_task(ids[3]).status is TaskStatus.PENDING
    ready = client.redis.lrange(QueueKeys(client.settings.key_prefix, QUEUE).ready("medium"), 0, -1)
    # The task enqueued before the kill is there or not (replication is asynchronous).
    assert [i for i in ready if i not in warm] == [parent, *ids[:3], *ids[4:]]


def _across_failover(client: Client, failover: Callable[[], str]) -> None:
    """A sync and an asyncio client, both connected before ``failover``, each enqueue a mixed batch after
    it; every task in request order."""
    key = QueueKeys(client.settings.key_prefix, QUEUE).ready("medium")

    async def batch(aclient: AsyncClient) -> tuple[str, list[str]]:
        deadline = time.monotonic() + 60
        while True:
            try:
                parent = (await aclient.enqueue("a", ["async-parent"], queue=QUEUE)).id
                return parent, [h.id for h in await aclient.enqueue_many(_mixed_batch(parent))]
            except BrokerUnavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def main() -> tuple[str, list[str], set[str]]:
        aclient = AsyncClient(client.settings)
        try:
            warm = {(await aclient.enqueue("a", ["warm"], queue=QUEUE)).id}  # the primary knows every script
            warm.add(await asyncio.to_thread(failover))
            await asyncio.to_thread(_enqueue_after_failover_in_order, client, warm)
            client.redis.delete(key)
            parent, ids = await batch(aclient)
            return parent, ids, warm
        finally:
            await aclient.close()

    parent, ids, warm = asyncio.run(main())
    ready = client.redis.lrange(key, 0, -1)
    assert [i for i in ready if i not in warm] == [parent, *ids[:3], *ids[4:]]


def _knows_no_script(node_client: object) -> bool:
    known = node_client.script_exists(*(script_sha(n) for n in SCRIPT_NAMES))  # type: ignore[attr-defined]
    return not any(known)


def test_sentinel_failover_to_a_replica_without_scripts_keeps_batch_order(
    private_sentinel_topology: SentinelTopology,
) -> None:
    topology = private_sentinel_topology
    client = Client(ha_settings(topology.url))

    def failover() -> str:
        warm = client.enqueue("a", ["warm"], queue=QUEUE).id  # the sync client's connections are open too
        assert _knows_no_script(topology.replica.client())  # the replica knows none of the scripts
        topology.primary.kill()
        topology.wait_for_failover(topology.primary.port, timeout=60)
        return warm

    try:
        _across_failover(client, failover)
    finally:
        client.close()


def test_cluster_failover_to_a_replica_without_scripts_keeps_batch_order(
    private_cluster_topology: ClusterTopology,
) -> None:
    topology = private_cluster_topology
    client = Client(ha_settings(topology.url))
    key = QueueKeys(client.settings.key_prefix, QUEUE).ready("medium")

    def failover() -> str:
        warm = client.enqueue("a", ["warm"], queue=QUEUE).id  # the sync client's connections are open too
        replicas = [n for n in topology.nodes if n.client().info("replication")["role"] == "slave"]
        assert all(_knows_no_script(n.client()) for n in replicas)
        primary = topology.primary_of(key)
        primary.kill()
        topology.wait_for_promotion(primary, key)
        return warm

    try:
        _across_failover(client, failover)
    finally:
        client.close()
