"""lua/queue_state.lua through broker.queue_overview on a real Redis server of this module's own (one test
flushes the server's scripts): one call per queue says what the one-queue reads say."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from jobqueue import AsyncClient, Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.live_state import queue_counters
from jobqueue.broker.queue_overview import read_queue_states, read_queue_states_async
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.errors import JobQueueError
from jobqueue.keys import QueueKeys

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("queue-state-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def own_client(own_server: RedisServer) -> Iterator[Client]:
    client = Client(Settings(redis_url=own_server.url, key_prefix=f"t{uuid.uuid4().hex[:10]}"))
    yield client
    client.close()


def test_counts_heads_and_counters_match_the_one_queue_reads(own_client: Client) -> None:
    own_client.enqueue_many(
        [make_request("a", [i], queue="q1", priority=("high", "low")[i % 2]) for i in range(5)]
        + [make_request("a", [0], queue="q1", countdown=300), make_request("a", [0], queue="q2")]
    )
    [q1, q2, empty] = read_queue_states(own_client, ["q1", "q2", "never-used"], with_counters=True)
    for state in (q1, q2, empty):
        assert state.depth == own_client.queue_depth(state.depth.queue)
        assert state.counters is not None
        assert state.counters.values == queue_counters(own_client, state.depth.queue).values
    assert q1.depth.ready == {"high": 3, "medium": 0, "low": 2} and q1.depth.delayed == 1
    assert q1.oldest_ready_age is not None and 0 <= q1.oldest_ready_age < 30
    assert empty.oldest_ready_age is None and empty.counters is not None and empty.counters.values == {}
    # Without counters the stats hash is not read.
    assert read_queue_states(own_client, ["q1"])[0].counters is None


def test_a_flushed_script_is_loaded_again(own_client: Client) -> None:
    own_client.enqueue("a", [0], queue="q1")
    own_client.redis.script_flush()
    assert read_queue_states(own_client, ["q1"])[0].depth.total_ready == 1
    own_client.redis.script_flush()

    async def read() -> int:
        client = AsyncClient(own_client.settings)
        try:
            return (await read_queue_states_async(client, ["q1"]))[0].depth.total_ready
        finally:
            await client.close()

    assert asyncio.run(read()) == 1


def test_a_key_of_the_wrong_type_is_a_jobqueue_error(own_client: Client) -> None:
    own_client.redis.set(QueueKeys(own_client.settings.key_prefix, "bad").delayed, "not a zset")
    with pytest.raises(JobQueueError, match="WRONGTYPE"):
        read_queue_states(own_client, ["bad"])
