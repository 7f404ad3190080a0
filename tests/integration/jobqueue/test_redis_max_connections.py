"""JOBQUEUE_REDIS_MAX_CONNECTIONS caps each client's connections on a real Redis: many threads enqueueing
at once share the cap (waiting for a free connection) and the client's other operations still get one;
a real worker process under the cap runs its tasks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
import redis

from jobqueue import AsyncClient, Client, Settings
from jobqueue.broker.enqueue import make_request

pytestmark = pytest.mark.timeout(120)
THREADS = 16
PER_THREAD = 40


def connected_clients(settings: Settings) -> int:
    probe = redis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        return int(probe.info("clients")["connected_clients"]) - 1  # not the probe itself
    finally:
        probe.close()


def enqueue_from_threads(client: Client) -> None:
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            start.wait()
            # One-task enqueues from many threads share round trips on one connection (the thread
            # auto-pipeline), so batches go in between: each exchange of those takes a connection.
            for i in range(0, PER_THREAD, 4):
                client.enqueue("add", [i, i])
                client.enqueue("add", [i + 1, i + 1])
                client.enqueue_many([make_request("add", [i + n, i + n]) for n in (2, 3)])
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=produce) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors


@pytest.mark.parametrize("cap", [None, 4])
def test_concurrent_enqueues_stay_within_the_cap(settings: Settings, cap: int | None) -> None:
    capped = settings.model_copy(update={"redis_max_connections": cap})
    before = connected_clients(settings)
    client = Client(capped)
    try:
        enqueue_from_threads(client)
        # Connections stay open in the pool (or the enqueue path) after use: the count is the most that
        # were ever open at once.
        opened = connected_clients(settings) - before
        assert client.queue_depth("default").total_ready == THREADS * PER_THREAD  # none lost to the cap
    finally:
        client.close()
    if cap is None:
        assert opened > 4  # without a cap, 16 threads at once open more (so the capped case means something)
    else:
        assert 1 <= opened <= cap


def test_the_async_client_honours_the_cap(settings: Settings) -> None:
    capped = settings.model_copy(update={"redis_max_connections": 4})
    before = connected_clients(settings)

    async def scenario() -> int:
        client = AsyncClient(capped)
        try:
            await asyncio.gather(*(client.enqueue("add", [i, i]) for i in range(200)))
            opened = connected_clients(settings) - before
            assert (await client.queue_depth("default")).total_ready == 200
            return opened
        finally:
            await client.close()

    assert 1 <= asyncio.run(scenario()) <= 4


def test_a_worker_under_a_small_cap_runs_its_tasks(
    settings: Settings, client: Client, start_worker: Callable[..., Any]
) -> None:
    capped = settings.model_copy(update={"redis_max_connections": 4})
    start_worker("--pool", "thread", "--concurrency", "8", worker_settings=capped)
    handles = [client.enqueue("add", [i, 1]) for i in range(100)]
    assert [h.result(timeout=60) for h in handles] == [i + 1 for i in range(100)]


@pytest.mark.parametrize("value", [0, 3, -1, 10**30])
def test_a_cap_out_of_range_is_refused(value: int) -> None:
    with pytest.raises(pydantic.ValidationError, match="redis_max_connections"):
        Settings(redis_max_connections=value)
