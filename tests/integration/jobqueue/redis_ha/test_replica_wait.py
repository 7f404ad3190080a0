"""JOBQUEUE_REDIS_WAIT_REPLICAS on real servers: enqueues and acks return only once the replica holds
them, and raise ReplicationIncomplete when too few replicas confirm in time."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from record_helpers import fetch
from redis_topologies import SentinelTopology, ha_settings

from jobqueue import AsyncClient, Client, TaskStatus
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import Outcome, OutcomeKind
from jobqueue.broker.redis_io import ReplicaWait, run_scripts
from jobqueue.broker.workflows import submit
from jobqueue.canvas import Signature, chain, dag
from jobqueue.errors import ReplicationIncomplete

pytestmark = pytest.mark.timeout(120)


@contextmanager
def replica_frozen(topology: SentinelTopology, seconds: float) -> Iterator[None]:
    """SIGSTOP the replica for ``seconds`` (well under the sentinels' 1 s down-after), then SIGCONT it."""
    process = topology.replica.process
    assert process is not None
    os.kill(process.pid, signal.SIGSTOP)
    timer = threading.Timer(seconds, os.kill, (process.pid, signal.SIGCONT))
    timer.start()
    try:
        yield
    finally:
        timer.join()


def test_an_enqueue_returns_only_once_the_replica_holds_it(sentinel_topology: SentinelTopology) -> None:
    client = Client(ha_settings(sentinel_topology.url, redis_wait_replicas=1, redis_wait_timeout_seconds=10))
    replica = sentinel_topology.replica.client()
    try:
        client.enqueue("add", [0, 0])  # loads the script and connects before the clock starts
        with replica_frozen(sentinel_topology, 0.6):
            started = time.monotonic()
            handle = client.enqueue("add", [1, 2])
            waited = time.monotonic() - started
        # Without WAIT the enqueue returns in a millisecond, while the replica is still stopped.
        assert waited >= 0.4
        assert replica.hget(client.queue_keys("default").task(handle.id), "status") == "QUEUED"
        batch = client.enqueue_many([make_request("add", [i, i]) for i in range(50)])
        keys = client.queue_keys("default")
        assert all(replica.exists(keys.task(h.id)) for h in batch)  # read at once: no replication lag left
    finally:
        client.close()


def test_too_few_replicas_raise_replication_incomplete_after_the_timeout(
    sentinel_topology: SentinelTopology,
) -> None:
    settings = ha_settings(sentinel_topology.url, redis_wait_replicas=2, redis_wait_timeout_seconds=0.2)
    client = Client(settings)
    try:
        started = time.monotonic()
        with pytest.raises(ReplicationIncomplete, match="only 1 of 2 Redis replica") as caught:
            client.enqueue("add", [1, 2])
        assert 0.15 <= time.monotonic() - started < 5
        assert (caught.value.confirmed, caught.value.wanted) == (1, 2)
        with pytest.raises(ReplicationIncomplete):
            client.enqueue_many([make_request("add", [i, i]) for i in range(3)])
        # The writes did run on the primary: the error says they may be lost, not that they failed.
        assert client.queue_depth("default").total_ready == 4
    finally:
        client.close()


def test_an_ack_batch_waits_for_the_replica_too(sentinel_topology: SentinelTopology) -> None:
    settings = ha_settings(sentinel_topology.url)
    client = Client(settings)
    try:
        client.enqueue("add", [1, 2])
        client.enqueue("add", [3, 4])
        jobs = fetch(client, 2)
        calls = [
            build_completion(
                settings, job, Outcome(job.id, job.token, OutcomeKind.SUCCESS, "3"), None, worker_id="w1"
            )
            for job in jobs
        ]
        with pytest.raises(ReplicationIncomplete):
            run_scripts(client.redis, calls[:1], ReplicaWait(2, 100))
        with replica_frozen(sentinel_topology, 0.6):
            started = time.monotonic()
            run_scripts(client.redis, calls[1:], ReplicaWait(1, 10_000))
            assert time.monotonic() - started >= 0.4
        replica = sentinel_topology.replica.client()
        keys = client.queue_keys("default")
        assert [replica.hget(keys.task(job.id), "status") for job in jobs] == ["SUCCESS", "SUCCESS"]
    finally:
        client.close()


def test_the_async_client_waits_for_replicas(sentinel_topology: SentinelTopology) -> None:
    settings = ha_settings(sentinel_topology.url, redis_wait_replicas=2, redis_wait_timeout_seconds=0.2)

    async def enqueue() -> None:
        client = AsyncClient(settings)
        try:
            with pytest.raises(ReplicationIncomplete):
                await client.enqueue("add", [1, 2])
            one = AsyncClient(settings.model_copy(update={"redis_wait_replicas": 1}))
            try:
                handle = await one.enqueue("add", [1, 2])
                assert (await one.get_task(handle.id)).status == TaskStatus.QUEUED
            finally:
                await one.close()
        finally:
            await client.close()

    asyncio.run(enqueue())


def test_concurrent_enqueues_share_round_trips_each_ending_with_one_wait(
    sentinel_topology: SentinelTopology,
) -> None:
    """Auto-pipelining (asyncio coroutines, sync threads) with JOBQUEUE_REDIS_WAIT_REPLICAS: every enqueue
    returns only once the replica holds it, and too few replicas fail every caller of the round trip."""
    settings = ha_settings(sentinel_topology.url, redis_wait_replicas=1, redis_wait_timeout_seconds=10)
    replica = sentinel_topology.replica.client()

    async def coroutines() -> list[str]:
        client = AsyncClient(settings)
        try:
            handles = await asyncio.gather(*(client.enqueue("add", [i, i]) for i in range(60)))
            return [h.id for h in handles]
        finally:
            await client.close()

    ids = asyncio.run(coroutines())
    client = Client(settings)
    try:
        threads_ids: list[str] = []

        def produce() -> None:
            for i in range(20):
                threads_ids.append(client.enqueue("add", [i, i]).id)

        threads = [threading.Thread(target=produce) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        keys = client.queue_keys("default")
        # Read at once: every enqueue returned after its round trip's WAIT, so no replication lag is left.
        assert len(set(ids + threads_ids)) == 180
        assert all(replica.exists(keys.task(task_id)) for task_id in ids + threads_ids)
    finally:
        client.close()

    too_many = settings.model_copy(update={"redis_wait_replicas": 2, "redis_wait_timeout_seconds": 0.2})

    async def refused() -> list[BaseException | object]:
        client = AsyncClient(too_many)
        try:
            return await asyncio.gather(
                *(client.enqueue("add", [i, i]) for i in range(20)), return_exceptions=True
            )
        finally:
            await client.close()

    assert all(isinstance(r, ReplicationIncomplete) for r in asyncio.run(refused()))


def test_a_workflow_returns_only_once_the_replica_holds_every_task_of_it(
    sentinel_topology: SentinelTopology,
) -> None:
    client = Client(ha_settings(sentinel_topology.url, redis_wait_replicas=1, redis_wait_timeout_seconds=10))
    replica = sentinel_topology.replica.client()
    keys = client.queue_keys("default")
    try:
        parent = client.enqueue("add", [0, 0])  # connects and loads the script before the clock starts
        with replica_frozen(sentinel_topology, 0.6):
            started = time.monotonic()
            # Depends on a task outside the workflow: its key is watched, as without a WAIT.
            flow = submit(client, chain(Signature("add", (1, 2)), Signature("add", (3,))))
            tree = submit(
                client,
                dag({"a": Signature("add", (1, 1)), "b": Signature("add", (2,))}, {"b": ["a", parent.id]}),
            )
            waited = time.monotonic() - started
        # Without the WAIT on the EXEC's connection it returns in a millisecond, the replica still stopped.
        assert waited >= 0.4
        ids = [*flow.ids, *tree.ids]
        assert [replica.exists(keys.task(task_id)) for task_id in ids] == [1] * len(ids)
    finally:
        client.close()


def test_a_workflow_with_too_few_replicas_raises_after_the_timeout_and_is_written_whole(
    sentinel_topology: SentinelTopology,
) -> None:
    client = Client(ha_settings(sentinel_topology.url, redis_wait_replicas=2, redis_wait_timeout_seconds=0.2))
    try:
        step = Signature("add", (3,)).set(queue="wf")
        flow = chain(Signature("add", (1, 2)).set(queue="wf"), step, step)
        with pytest.raises(ReplicationIncomplete, match="only 1 of 2 Redis replica"):
            submit(client, flow)
        # Like an enqueue's, the error says the graph may be lost, not that it was not written: all of it is.
        task_keys = list(client.redis.scan_iter(match=client.queue_keys("wf").task("*"), _type="hash"))
        statuses = sorted(client.redis.hget(key, "status") for key in task_keys)
        assert statuses == ["PENDING", "PENDING", "QUEUED"]
        # The connection is in step (no reply left unread) and goes on serving.
        assert client.redis.ping()
    finally:
        client.close()
