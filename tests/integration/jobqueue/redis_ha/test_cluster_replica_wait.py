"""JOBQUEUE_REDIS_WAIT_REPLICAS on a real Redis Cluster (three primaries, one replica each): an enqueue or
ack returns only once the replica of the shard that took it holds it; a stopped replica makes it raise
ReplicationIncomplete after the timeout; a slot moved under a client (ASK during the migration, MOVED
after it) is followed, and the WAIT goes to the new owner with the calls."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis
from record_helpers import fetch
from redis.cluster import RedisCluster
from redis_topologies import ClusterTopology, Node, ha_settings

from jobqueue import AsyncClient, Client, TaskStatus
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import Outcome, OutcomeKind
from jobqueue.broker.redis_io import ReplicaWait, run_scripts
from jobqueue.broker.workflows import submit
from jobqueue.canvas import Signature, dag
from jobqueue.errors import ReplicationIncomplete
from jobqueue.keys import QueueKeys

pytestmark = pytest.mark.timeout(120)


def replica_of(topology: ClusterTopology, primary: Node) -> Node:
    for node in topology.nodes:
        info = node.client().info("replication")
        if info["role"] == "slave" and int(info["master_port"]) == primary.port:
            return node
    raise AssertionError(f"no replica follows {primary.port}")


def replica_reader(replica: Node) -> redis.Redis:
    """One connection to a replica in READONLY mode (reads of its own copy, no redirect to the primary)."""
    reader = redis.Redis(port=replica.port, decode_responses=True, protocol=2, single_connection_client=True)
    reader.execute_command("READONLY")
    return reader


@contextmanager
def frozen(node: Node, seconds: float) -> Iterator[None]:
    """SIGSTOP ``node`` for ``seconds`` (under the cluster's 2 s node timeout: no failover), then SIGCONT."""
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGSTOP)
    timer = threading.Timer(seconds, os.kill, (node.process.pid, signal.SIGCONT))
    timer.start()
    try:
        yield
    finally:
        timer.join()


def queue_per_shard(client: Client, topology: ClusterTopology) -> dict[int, str]:
    """One queue name per primary (by port)."""
    found: dict[int, str] = {}
    for i in range(10_000):
        queue = f"w{i}"
        port = topology.primary_of(QueueKeys(client.settings.key_prefix, queue).ready("high")).port
        found.setdefault(port, queue)
        if len(found) == 3:
            return found
    raise AssertionError(f"could not place queues on three shards: {found}")


def test_an_enqueue_returns_only_once_its_shards_replica_holds_it(cluster_topology: ClusterTopology) -> None:
    client = Client(ha_settings(cluster_topology.url, redis_wait_replicas=1, redis_wait_timeout_seconds=10))
    try:
        queues = queue_per_shard(client, cluster_topology)
        for port, queue in queues.items():
            client.enqueue("add", [0, 0], queue=queue)  # connects and loads the script before the clock
            primary = next(n for n in cluster_topology.nodes if n.port == port)
            replica = replica_of(cluster_topology, primary)
            with frozen(replica, 0.6):
                started = time.monotonic()
                handle = client.enqueue("add", [1, 2], queue=queue)
                waited = time.monotonic() - started
            # Without WAIT (or with a WAIT on another connection) it returns in a millisecond.
            assert waited >= 0.4, (queue, waited)
            keys = client.queue_keys(queue)
            assert replica_reader(replica).hget(keys.task(handle.id), "status") == "QUEUED"
        # One exchange over three shards: one pipeline and one WAIT per node; read at once, no lag left.
        batch = client.enqueue_many(
            [make_request("add", [i, i], queue=q) for q in queues.values() for i in range(20)]
        )
        readers = {
            q: replica_reader(
                replica_of(cluster_topology, next(n for n in cluster_topology.nodes if n.port == p))
            )
            for p, q in queues.items()
        }
        for handle in batch:
            queue = handle.id.split(".")[0]
            assert readers[queue].exists(client.queue_keys(queue).task(handle.id)), handle.id
    finally:
        client.close()


def test_a_workflow_returns_only_once_its_shards_replica_holds_every_task(
    cluster_topology: ClusterTopology,
) -> None:
    client = Client(ha_settings(cluster_topology.url, redis_wait_replicas=1, redis_wait_timeout_seconds=10))
    try:
        for port, queue in queue_per_shard(client, cluster_topology).items():
            step = Signature("add", (3,)).set(queue=queue)
            parent = client.enqueue("add", [0, 0], queue=queue)  # connects and loads before the clock
            replica = replica_of(cluster_topology, next(n for n in cluster_topology.nodes if n.port == port))
            with frozen(replica, 0.6):
                started = time.monotonic()
                # The MULTI/EXEC runs on the slot owner's own connection, and the WAIT after it there.
                flow = submit(client, dag({"a": step, "b": step}, {"a": [parent.id], "b": ["a"]}))
                waited = time.monotonic() - started
            assert waited >= 0.4, (queue, waited)
            reader = replica_reader(replica)
            keys = client.queue_keys(queue)
            assert [reader.hget(keys.task(task_id), "status") for task_id in flow.ids] == ["PENDING"] * 2
    finally:
        client.close()


def test_a_stopped_replica_makes_the_enqueue_raise_after_the_timeout(
    cluster_topology: ClusterTopology,
) -> None:
    client = Client(ha_settings(cluster_topology.url, redis_wait_replicas=1, redis_wait_timeout_seconds=0.3))
    try:
        port, queue = next(iter(queue_per_shard(client, cluster_topology).items()))
        client.enqueue("add", [0, 0], queue=queue)
        replica = replica_of(cluster_topology, next(n for n in cluster_topology.nodes if n.port == port))
        with frozen(replica, 1.2):
            started = time.monotonic()
            with pytest.raises(ReplicationIncomplete, match="only 0 of 1 Redis replica") as caught:
                client.enqueue("add", [1, 2], queue=queue)
            assert 0.25 <= time.monotonic() - started < 5
        assert (caught.value.confirmed, caught.value.wanted) == (0, 1)
        # It did run on the primary: the error says it may be lost, not that it failed.
        assert client.queue_depth(queue).total_ready == 2
    finally:
        client.close()


def test_an_ack_batch_over_two_shards_waits_for_both_replicas(cluster_topology: ClusterTopology) -> None:
    settings = ha_settings(cluster_topology.url)
    client = Client(settings)
    try:
        queues = list(queue_per_shard(client, cluster_topology).items())[:2]
        jobs = []
        for _, queue in queues:
            client.enqueue("add", [1, 2], queue=queue)
            jobs += fetch(client, 1, queue=queue)
        calls = [
            build_completion(
                settings, j, Outcome(j.id, j.token, OutcomeKind.SUCCESS, "3"), None, worker_id="w1"
            )
            for j in jobs
        ]
        second = replica_of(
            cluster_topology, next(n for n in cluster_topology.nodes if n.port == queues[1][0])
        )
        with frozen(second, 0.6):
            started = time.monotonic()
            run_scripts(client.redis, calls, ReplicaWait(1, 10_000))
            assert time.monotonic() - started >= 0.4
        for (port, queue), job in zip(queues, jobs, strict=True):
            replica = replica_of(cluster_topology, next(n for n in cluster_topology.nodes if n.port == port))
            assert replica_reader(replica).hget(client.queue_keys(queue).task(job.id), "status") == "SUCCESS"
    finally:
        client.close()


def test_the_async_client_waits_on_every_shard(cluster_topology: ClusterTopology) -> None:
    settings = ha_settings(cluster_topology.url, redis_wait_replicas=1, redis_wait_timeout_seconds=10)
    probe = Client(settings)
    try:
        queues = queue_per_shard(probe, cluster_topology)
    finally:
        probe.close()
    replicas = {q: replica_of(cluster_topology, next(n for n in cluster_topology.nodes if n.port == p))
                for p, q in queues.items()}  # fmt: skip

    async def enqueue() -> list[str]:
        client = AsyncClient(settings)
        try:
            # Concurrent enqueues share round trips: each ends with one WAIT per node it wrote to.
            handles = await asyncio.gather(
                *(client.enqueue("add", [i, i], queue=q) for q in queues.values() for i in range(20))
            )
            assert (await client.get_task(handles[0].id)).status == TaskStatus.QUEUED
            too_few = AsyncClient(settings.model_copy(update={"redis_wait_timeout_seconds": 0.3}))
            try:
                queue = next(iter(queues.values()))
                await too_few.enqueue("add", [0, 0], queue=queue)
                with frozen(replicas[queue], 1.2):
                    with pytest.raises(ReplicationIncomplete):
                        await too_few.enqueue("add", [1, 2], queue=queue)
            finally:
                await too_few.close()
            return [h.id for h in handles]
        finally:
            await client.close()

    ids = asyncio.run(enqueue())
    keys = {q: QueueKeys(settings.key_prefix, q) for q in queues.values()}
    readers = {q: replica_reader(r) for q, r in replicas.items()}
    for task_id in ids:
        queue = task_id.split(".")[0]
        assert readers[queue].exists(keys[queue].task(task_id)), task_id


def test_a_slot_moved_under_the_client_is_followed_and_waited_for_on_its_new_owner(
    cluster_topology: ClusterTopology,
) -> None:
    """The queue's slot is migrated to another primary after two clients loaded the slot map. During the
    migration the old owner answers ASK and the new one TRYAGAIN (an enqueue creates keys, which no node
    can do for a slot in migration): the enqueue waits it out and lands on the new owner once the
    migration ends. A client that saw none of it meets MOVED: its call runs on the new owner, and the WAIT
    with it (a frozen replica of the new owner holds that enqueue back)."""
    settings = ha_settings(cluster_topology.url, redis_wait_replicas=1, redis_wait_timeout_seconds=10)
    during_client, after_client = Client(settings), Client(settings)
    try:
        queue = "moving"
        keys = during_client.queue_keys(queue)
        for client in (during_client, after_client):
            client.enqueue("add", [0, 0], queue=queue)  # each client now routes the slot to its owner
        source = cluster_topology.primary_of(keys.ready("high"))
        primaries = cluster_topology.primaries_now()
        target = next(n for n in primaries if n.port != source.port)
        slot = cluster_topology.begin_slot_migration(keys.ready("high"), target)
        dst = target.client()

        outcome: list[object] = []
        enqueue = threading.Thread(
            target=lambda: outcome.append(during_client.enqueue("add", [1, 1], queue=queue).id)
        )
        ending = [node.client() for node in primaries]  # connected before the clock starts
        enqueue.start()
        time.sleep(0.15)  # the enqueue meets ASK then TRYAGAIN, and retries (for about 1.5 s)
        assert enqueue.is_alive()
        cluster_topology.end_slot_migration(slot, target, ending)  # the target owns the slot
        enqueue.join(10)
        [during] = outcome
        target_replica = replica_of(cluster_topology, target)
        assert replica_reader(target_replica).hget(keys.task(str(during)), "status") == "QUEUED"

        assert isinstance(after_client.redis, RedisCluster)
        with frozen(target_replica, 0.6):
            started = time.monotonic()
            after = after_client.enqueue("add", [2, 2], queue=queue)  # MOVED: its slot map is stale
            assert time.monotonic() - started >= 0.4
        assert dst.hget(keys.task(after.id), "status") == "QUEUED"
        assert during_client.queue_depth(queue).total_ready == 4
    finally:
        during_client.close()
        after_client.close()
