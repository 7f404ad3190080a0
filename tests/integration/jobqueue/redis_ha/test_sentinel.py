"""jobqueue through Redis Sentinel on real servers (one primary, one replica, three sentinels): every
process finds the primary by asking the sentinels, and the core behaviours work unchanged."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import redis
from jq_testing import burst_worker, runs
from psycopg_pool import ConnectionPool
from record_helpers import drain, make_recorder
from redis_topologies import SentinelTopology, ha_settings

from jobqueue import AsyncClient, Client, Settings, TaskStatus
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.redis_io import connect
from jobqueue.broker.workflows import submit
from jobqueue.canvas import Signature, chain

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def settings(sentinel_topology: SentinelTopology) -> Settings:
    return ha_settings(sentinel_topology.url)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    c = Client(settings)
    yield c
    c.close()


def test_sync_and_async_clients_talk_to_the_primary_the_sentinels_name(
    settings: Settings, sentinel_topology: SentinelTopology
) -> None:
    conn = connect(settings)
    try:
        assert conn.info("replication")["role"] == "master"
        assert conn.connection_pool.get_master_address() == ("127.0.0.1", sentinel_topology.primary.port)
    finally:
        conn.close()

    async def role() -> str:
        client = AsyncClient(settings)
        try:
            handle = await client.enqueue("add", [1, 2])
            assert (await client.get_task(handle.id)).status == TaskStatus.QUEUED
            return str((await client.redis.info("replication"))["role"])
        finally:
            await client.close()

    assert asyncio.run(role()) == "master"


def test_enqueue_fetch_ack_retry_dead_letter_delay_and_cancel_through_sentinel(
    settings: Settings, client: Client
) -> None:
    done = client.enqueue("add", [2, 3])
    flaky = client.enqueue("fail_times", [2], max_retries=3)
    dead = client.enqueue("fail_with", ["value"])  # ValueError: not retried, dead-lettered
    delayed = client.enqueue("add", [1, 1], countdown=0.5)
    cancelled = client.enqueue("add", [9, 9], countdown=60)
    client.cancel(cancelled.id)
    recorded = client.enqueue("record")

    ran = burst_worker(settings, "--pool", "thread", "--burst-wait", "5")

    assert ran.returncode == 1, ran.stdout + ran.stderr[-3000:]  # 1: one task failed (the dead letter)
    assert done.result(timeout=1) == 5
    assert flaky.result(timeout=1) == 3
    assert client.get_task(flaky.id).retries == 2
    assert client.get_task(dead.id).status == TaskStatus.FAILED
    assert [t.id for t in client.list_dead_letters("default")] == [dead.id]
    assert delayed.result(timeout=1) == 2
    assert client.get_task(cancelled.id).status == TaskStatus.CANCELLED
    assert [(task_id, what) for task_id, what, _ in runs(client)] == [
        (recorded.id, "start"),
        (recorded.id, "done"),
    ]


def test_the_recorder_writes_sentinel_events_into_postgresql(client: Client, pg_pool: ConnectionPool) -> None:
    handles = [client.enqueue("add", [i, i]) for i in range(5)]
    recorder = make_recorder(client, pg_pool)
    assert drain(recorder) == 5
    with pg_pool.connection() as conn:
        rows = conn.execute("SELECT id, status FROM tasks ORDER BY id").fetchall()
    assert rows == sorted((h.id, "QUEUED") for h in handles)


def test_dedup_rate_limit_and_a_single_queue_workflow(settings: Settings, client: Client) -> None:
    first = client.enqueue("add", [1, 1], unique=True)
    assert client.enqueue("add", [1, 1], unique=True).id == first.id
    QueueAdmin(client).set_rate_limit("limited", max_tasks_per_second=5)
    limited = [client.enqueue("add", [i, i], queue="limited") for i in range(8)]
    flow = submit(client, chain(Signature("add", (1, 2)), Signature("add", (3,))))

    ran = burst_worker(settings, "--queues", "default,limited", "--pool", "thread", "--burst-wait", "5")

    assert ran.returncode == 0, ran.stdout + ran.stderr[-3000:]
    assert first.result(timeout=1) == 2
    assert flow.sinks[0].result(timeout=1) == 6  # add(1, 2), then add(3, 3) with the parent's result
    assert [h.result(timeout=1) for h in limited] == [2 * i for i in range(8)]
    starts = sorted(client.get_task(h.id).started_at or 0.0 for h in limited)
    # 8 tasks at 5 a second (burst 1): at least 7 intervals of 0.2 s between the first and the last start.
    assert starts[0] > 0 and starts[-1] - starts[0] >= 1.3


def test_the_connection_cap_holds_through_sentinel(settings: Settings) -> None:
    """JOBQUEUE_REDIS_MAX_CONNECTIONS on a Sentinel URL: a capped pool that waits for a free connection
    (threads and coroutines past the cap all get their enqueue through)."""
    capped = settings.model_copy(update={"redis_max_connections": 2})
    client = Client(capped)
    try:
        pool = client.redis.connection_pool
        assert isinstance(pool, redis.BlockingConnectionPool) and pool.max_connections == 2
        done: list[str] = []

        def produce() -> None:
            for i in range(25):
                done.append(client.enqueue("add", [i, i], queue="capped").id)
                client.queue_depth("capped")

        threads = [threading.Thread(target=produce) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(done) == 200 and len(pool._connections) <= 2  # type: ignore[attr-defined]
    finally:
        client.close()

    async def coroutines() -> int:
        aclient = AsyncClient(capped)
        try:
            handles = await asyncio.gather(
                *(aclient.enqueue("add", [i, i], queue="capped") for i in range(50)),
                *(aclient.queue_depth("capped") for _ in range(20)),
            )
            return len(handles)
        finally:
            await aclient.close()

    assert asyncio.run(coroutines()) == 70
