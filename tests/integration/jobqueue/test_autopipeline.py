"""Auto-pipelining (jobqueue.broker.autopipeline) on a real Redis server of this module's own: the tests
flush scripts and restart the server, which must not disturb other tests sharing the session's server."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from jobqueue import AsyncClient, Client, Settings, TaskStatus
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.errors import BrokerUnavailable, JobQueueError, ValidationError
from jobqueue.keys import QueueKeys

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("autopipeline-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_settings(own_server: RedisServer) -> Settings:
    return Settings(redis_url=own_server.url, key_prefix=f"t{uuid.uuid4().hex[:10]}")


def _ready_ids(settings: Settings, queue: str = "default") -> list[str]:
    conn = redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)
    try:
        return list(conn.lrange(QueueKeys(settings.key_prefix, queue).ready("medium"), 0, -1))
    finally:
        conn.close()


def _evalsha_connections(settings: Settings) -> int:
    """Server connections whose last command was an EVALSHA (the enqueue round trips' connections)."""
    conn = redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)
    try:
        return sum(1 for c in conn.client_list() if c["cmd"] == "evalsha")
    finally:
        conn.close()


async def _produce(client: AsyncClient, producers: int, per_producer: int) -> list[list[str]]:
    async def producer(p: int) -> list[str]:
        return [(await client.enqueue("a", [p, i])).id for i in range(per_producer)]

    return list(await asyncio.gather(*(producer(p) for p in range(producers))))


def _evalsha_calls(settings: Settings) -> int:
    conn = redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)
    try:
        return int(conn.info("commandstats").get("cmdstat_evalsha", {"calls": 0})["calls"])
    finally:
        conn.close()


def test_100_concurrent_coroutines_share_round_trips_on_one_connection(own_settings: Settings) -> None:
    before = _evalsha_calls(own_settings)

    async def main() -> list[list[str]]:
        client = AsyncClient(own_settings)
        try:
            return await _produce(client, 100, 20)
        finally:
            await client.close()

    produced = asyncio.run(main())
    ready = _ready_ids(own_settings)
    assert len(ready) == 2000 and set(ready) == {i for ids in produced for i in ids}
    # Each producer's tasks are in the queue in the order it enqueued them (FIFO per caller).
    position = {task_id: n for n, task_id in enumerate(ready)}
    for ids in produced:
        assert [position[i] for i in ids] == sorted(position[i] for i in ids)
    # 100 callers at once, one connection: their calls went as shared pipelines, not one per caller.
    assert _evalsha_connections(own_settings) <= 1
    # And the one-task calls of one queue and spec in a round trip became one script call each time.
    assert _evalsha_calls(own_settings) - before < 2000 / 4


def test_concurrent_calls_of_one_loop_iteration_keep_their_issue_order(own_settings: Settings) -> None:
    async def main() -> list[str]:
        client = AsyncClient(own_settings)
        try:
            handles = await asyncio.gather(*(client.enqueue("a", [i]) for i in range(300)))
            return [h.id for h in handles]
        finally:
            await client.close()

    issued = asyncio.run(main())
    assert _ready_ids(own_settings) == issued


def test_an_invalid_call_fails_alone_among_valid_ones(own_settings: Settings) -> None:
    """A missing parent (the script's own refusal) and a Redis error reply (the queue's ready list is not
    a list) each reach only their own caller; the calls around them in the same pipeline succeed."""
    broken = QueueKeys(own_settings.key_prefix, "broken").ready("medium")
    conn = redis.Redis.from_url(own_settings.redis_url.get_secret_value())
    conn.set(broken, "not a list")
    conn.close()

    async def main() -> list[object]:
        client = AsyncClient(own_settings)
        try:
            calls = [client.enqueue("a", [i]) for i in range(50)]
            calls.insert(10, client.enqueue("a", [0], depends_on=["default.nosuchparent"]))
            calls.insert(30, client.enqueue("a", [0], queue="broken"))
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await client.close()

    outcomes = asyncio.run(main())
    assert isinstance(outcomes[10], ValidationError) and outcomes[10].field == "depends_on"
    assert isinstance(outcomes[30], JobQueueError) and "WRONGTYPE" in str(outcomes[30])
    rest = [o for i, o in enumerate(outcomes) if i not in (10, 30)]
    assert not any(isinstance(o, BaseException) for o in rest)
    assert len(_ready_ids(own_settings)) == 50


def test_noscript_after_script_flush_reruns_the_calls_in_order(own_settings: Settings) -> None:
    async def main() -> list[str]:
        client = AsyncClient(own_settings)
        try:
            first = [h.id for h in await asyncio.gather(*(client.enqueue("a", [i]) for i in range(20)))]
            await client.redis.script_flush()
            # Every call of this pipeline meets NOSCRIPT; they are loaded and re-run, in order.
            later = [h.id for h in await asyncio.gather(*(client.enqueue("a", [i]) for i in range(50)))]
            return first + later
        finally:
            await client.close()

    ids = asyncio.run(main())
    assert _ready_ids(own_settings) == ids


def test_a_redis_restart_mid_batch_loses_no_acknowledged_task(tmp_path: Path) -> None:
    """Producers keep enqueueing while Redis restarts (AOF fsynced on every write, so what Redis
    acknowledged survives). Every call either returns, and its task is in Redis, or raises
    BrokerUnavailable; afterwards the same client enqueues again (nothing is left wedged)."""
    server = RedisServer(tmp_path / "redis", appendonly=True, appendfsync="always").start()
    settings = Settings(redis_url=server.url, key_prefix="restart", socket_timeout_seconds=2.0)
    acknowledged: list[str] = []
    failures: list[BaseException] = []

    async def producer(client: AsyncClient, p: int, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            try:
                acknowledged.append((await client.enqueue("a", [p, i])).id)
            except BrokerUnavailable as exc:
                failures.append(exc)
                await asyncio.sleep(0.01)
            i += 1

    async def main() -> str:
        client = AsyncClient(settings)
        stop = asyncio.Event()
        try:
            tasks = [asyncio.create_task(producer(client, p, stop)) for p in range(50)]
            while len(acknowledged) < 500:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            count = len(acknowledged)
            while len(acknowledged) < count + 500:  # producing again after the restart
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.gather(*tasks)
            return (await client.enqueue("a", ["after"])).id
        finally:
            await client.close()

    try:
        last = asyncio.run(main())
        ready = set(_ready_ids(settings))
        assert set(acknowledged) <= ready and last in ready
    finally:
        server.stop()


def test_sync_client_threads_share_round_trips(own_settings: Settings) -> None:
    client = Client(own_settings)
    try:

        def produce(worker: int) -> list[str]:
            return [client.enqueue("a", [worker, i]).id for i in range(30)]

        with ThreadPoolExecutor(max_workers=100) as pool:
            produced = list(pool.map(produce, range(100)))
        ready = _ready_ids(own_settings)
        assert len(ready) == 3000 and set(ready) == {i for ids in produced for i in ids}
        position = {task_id: n for n, task_id in enumerate(ready)}
        for ids in produced:
            assert [position[i] for i in ids] == sorted(position[i] for i in ids)
        # One round trip at a time, so one wire connection served all 100 threads.
        assert len(client._wire._idle) == 1
    finally:
        client.close()


def test_sync_client_threads_get_their_own_errors(own_settings: Settings) -> None:
    broken = QueueKeys(own_settings.key_prefix, "broken").ready("medium")
    client = Client(own_settings)
    client.redis.set(broken, "not a list")
    barrier = threading.Barrier(40)
    try:

        def produce(worker: int) -> object:
            barrier.wait(30)
            try:
                if worker == 7:
                    return client.enqueue("a", [0], queue="broken")
                if worker == 8:
                    return client.enqueue("a", [0], depends_on=["default.nosuchparent"])
                return client.enqueue("a", [worker])
            except JobQueueError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=40) as pool:
            outcomes = list(pool.map(produce, range(40)))
        assert isinstance(outcomes[7], JobQueueError) and "WRONGTYPE" in str(outcomes[7])
        assert isinstance(outcomes[8], ValidationError)
        assert sum(1 for o in outcomes if not isinstance(o, JobQueueError)) == 38
        assert len(_ready_ids(own_settings)) == 38
        assert {client.get_task(i).status for i in _ready_ids(own_settings)} == {TaskStatus.QUEUED}
    finally:
        client.close()


def test_sync_client_threads_survive_a_script_flush(own_settings: Settings) -> None:
    client = Client(own_settings)
    try:
        client.enqueue("a", [0])
        client.redis.script_flush()
        barrier = threading.Barrier(20)

        def produce(worker: int) -> str:
            barrier.wait(30)
            return client.enqueue("a", [worker]).id

        with ThreadPoolExecutor(max_workers=20) as pool:
            ids = list(pool.map(produce, range(20)))
        assert set(ids) <= set(_ready_ids(own_settings))
        assert len(_ready_ids(own_settings)) == 21
    finally:
        client.close()
