"""Flow control at the script level (configure.lua, fetch.lua) and the admin API, on a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from jobqueue import App, Client, Settings
from jobqueue.broker.leases import FetchReply, build_fetch, parse_fetch
from jobqueue.broker.redis_io import run_script
from jobqueue.errors import ValidationError
from jobqueue.flow_control import PriorityPolicy

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def app(settings: Settings) -> App:
    a = App(settings=settings)
    yield a
    a.close()


def fetch(client: Client, n: int = 10, queue: str = "default") -> FetchReply:
    return parse_fetch(queue, run_script(client.redis, build_fetch(client.settings, queue, n, "w1")))


def test_pause_hands_out_nothing_while_enqueue_works_and_resume_wakes(app: App) -> None:
    client = app.client
    app.queues.pause("default")
    h = client.enqueue("add", [1, 2])
    assert client.get_task(h.id).status == "QUEUED"
    reply = fetch(client)
    assert (reply.wait_ms, reply.jobs) == (-2, [])
    client.redis.delete(client.queue_keys("default").wake)  # an idle worker consumed the marker
    app.queues.resume("default")
    assert client.redis.llen(client.queue_keys("default").wake) == 1  # idle workers start at once
    assert [j.id for j in fetch(client).jobs] == [h.id]
    assert app.queues.get_config("default").paused is False


def test_rate_limit_burst_then_exact_wait(app: App) -> None:
    client = app.client
    app.queues.set_rate_limit("default", max_tasks_per_minute=60, burst=3)
    for i in range(5):
        client.enqueue("add", [i, i])
    first = fetch(client)
    assert len(first.jobs) == 3
    second = fetch(client)
    assert second.jobs == [] and 900 <= second.wait_ms <= 1000  # one per second after the burst
    stats = app.queues.rate_limit_stats("default")
    assert (stats.remaining, stats.burst_used, stats.current_count) == (0, 3, 3)
    assert 0.9 <= stats.wait_seconds <= 1.0
    app.queues.reset_rate_limit("default")
    assert len(fetch(client).jobs) == 2
    assert client.redis.llen(client.queue_keys("default").ready("medium")) == 0


def test_a_new_limit_takes_effect_at_once_despite_the_old_debt(app: App) -> None:
    """Bug fixed in fetch.lua: the GCRA state was a bare timestamp in the old interval, so after going from
    1/min to 100/s nothing started for up to a minute."""
    client = app.client
    app.queues.set_rate_limit("default", max_tasks_per_minute=1)
    for i in range(4):
        client.enqueue("add", [i, i])
    assert len(fetch(client).jobs) == 1
    assert fetch(client).wait_ms > 50_000
    app.queues.set_rate_limit("default", max_tasks_per_second=100)
    # The start already made still counts, re-expressed in the new interval: a 10 ms wait, not 60 s.
    assert 0 < fetch(client).wait_ms <= 10
    time.sleep(0.02)
    assert len(fetch(client, 1).jobs) == 1


def test_disable_and_enable_keep_the_limit(app: App) -> None:
    client = app.client
    app.queues.set_rate_limit("default", max_tasks_per_hour=1)
    for i in range(3):
        client.enqueue("add", [i, i])
    assert len(fetch(client).jobs) == 1
    assert fetch(client).wait_ms > 0
    assert app.queues.set_rate_limit("default", enabled=False).enabled is False
    assert len(fetch(client, 1).jobs) == 1
    assert app.queues.set_rate_limit("default", enabled=True).limit == 1
    assert fetch(client).wait_ms > 0
    assert app.queues.rate_limit_stats("default").remaining == 0
    app.queues.remove_rate_limit("default")
    assert app.queues.get_rate_limit("default") is None
    assert len(fetch(client).jobs) == 1


def test_max_in_flight_counts_leases_of_every_worker(app: App) -> None:
    client = app.client
    app.queues.set_max_in_flight("default", 2)
    ids = [client.enqueue("add", [i, i]).id for i in range(5)]
    got = fetch(client, 10).jobs
    assert [j.id for j in got] == ids[:2]
    reply = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 10, "w2"))
    )
    assert (reply.wait_ms, reply.jobs) == (-3, [])
    app.queues.set_max_in_flight("default", None)
    assert len(fetch(client).jobs) == 3


def test_weighted_rotation_and_strict_order(app: App) -> None:
    client = app.client
    for i in range(30):
        client.enqueue("add", [i, 0], priority="high")
    for i in range(10):
        client.enqueue("add", [i, 0], priority="low")
    app.queues.set_priority_policy("default", "weighted", weights=(6, 3, 1))
    batch = fetch(client, 20).jobs
    # Medium is empty: its 3 slots fall through to high; 1 in 10 slots is low's.
    assert sum(j.priority == "low" for j in batch) == 2
    app.queues.set_priority_policy("default", PriorityPolicy.STRICT)
    rest = fetch(client, 20).jobs
    assert [j.priority for j in rest] == ["high"] * 12 + ["low"] * 8
    cfg = app.queues.get_config("default")
    assert (cfg.priority_policy, cfg.weights) == (PriorityPolicy.STRICT, None)


def test_malformed_config_written_by_hand_does_not_break_fetch(app: App) -> None:
    client = app.client
    client.enqueue("add", [1, 1])
    client.redis.hset(
        client.queue_keys("default").config,
        mapping={"priority_policy": "weighted", "weights": "oops", "rate_limit": "5"},
    )
    assert len(fetch(client).jobs) == 1  # strict order, period defaults to 1 s


def test_admin_validation_errors_name_the_field(app: App) -> None:
    with pytest.raises(ValidationError) as info:
        app.queues.set_rate_limit("default", max_tasks_per_minute=-5)
    assert info.value.field == "max_tasks_per_minute"
    with pytest.raises(ValidationError) as info:
        app.queues.set_rate_limit("default", enabled=False)  # nothing to switch off
    assert info.value.field == "rate_limit"
    with pytest.raises(ValidationError) as info:
        app.queues.set_priority_policy("default", "weighted", weights=(1, 2))
    assert info.value.field == "weights"
    with pytest.raises(ValidationError) as info:
        app.queues.pause("bad queue")
    assert info.value.field == "queue"


def test_flow_control_costs_no_extra_round_trip(app: App) -> None:
    """Pause, max in-flight, the rate limit and the weighted policy are all decided inside the one fetch
    call that leases a batch: exactly one command reaches Redis from the client for ten tasks."""
    client = app.client
    app.queues.set_rate_limit("default", max_tasks_per_second=1000, burst=100)
    app.queues.set_max_in_flight("default", 50)
    app.queues.set_priority_policy("default", "weighted")
    for i in range(10):
        client.enqueue("add", [i, i], priority=("high", "medium", "low")[i % 3])
    fetch(client, 1)  # loads the script
    client.redis.config_resetstat()
    assert len(fetch(client, 10).jobs) == 9
    stats = client.redis.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 1
    assert "cmdstat_get" not in stats  # nothing read outside the script


def test_async_admin(settings: Settings) -> None:
    async def main() -> None:
        app = App(settings=settings)
        client = app.async_client()
        try:
            await client.queues.set_rate_limit("default", max_tasks_per_second=5, burst=2)
            rate = await client.queues.get_rate_limit("default")
            assert rate is not None and rate.per_second == 5
            await client.queues.pause("default")
            assert (await client.queues.get_config("default")).paused
            await client.queues.resume("default")
            assert (await client.queues.rate_limit_stats("default")).remaining == 2
        finally:
            await client.close()

    asyncio.run(main())


def test_rate_state_left_by_an_older_version_is_replaced(app: App) -> None:
    client = app.client
    app.queues.set_rate_limit("default", max_tasks_per_second=10)
    client.redis.set(client.queue_keys("default").rate, "123", px=60_000)  # the old string format
    client.enqueue("add", [1, 1])
    assert len(fetch(client).jobs) == 1
