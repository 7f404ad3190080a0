"""Per-priority rate limits inside a queue (issue 20): a limit for high, medium and low each, beside the
queue's own, enforced by fetch.lua on a real Redis, and held across real worker processes."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobqueue import App, Client, Priority, Settings, ValidationError
from jobqueue.broker.leases import FetchReply, build_fetch, parse_fetch
from jobqueue.broker.redis_io import run_script

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    a = App(settings=settings)
    yield a
    a.close()


def fetch(client: Client, n: int = 50, park_ms: int | None = None) -> FetchReply:
    call = build_fetch(client.settings, "default", n, "w1", park_ms)
    return parse_fetch("default", run_script(client.redis, call))


def enqueue(client: Client, priority: str, count: int) -> list[str]:
    return [client.enqueue("add", [i, i], priority=priority).id for i in range(count)]


def levels(client: Client, reply: FetchReply) -> list[str]:
    return [client.get_task(j.id).priority.value for j in reply.jobs]


def test_a_limited_level_is_passed_over_and_lower_levels_still_start(app: App) -> None:
    client = app.client
    app.queues.set_priority_rate_limit("default", "high", max_tasks_per_minute=60, burst=2)
    enqueue(client, "high", 5)
    enqueue(client, "low", 3)
    first = fetch(client)
    # Strict order would give 5 high first: the high level's own limit lets 2 start, then low runs.
    assert levels(client, first) == ["high", "high", "low", "low", "low"]
    second = fetch(client)
    # Only limited high work waits: the worker is told exactly how long (one start per second).
    assert second.jobs == [] and 900 <= second.wait_ms <= 1000
    assert client.queue_depth("default").ready["high"] == 3


def test_each_level_has_its_own_limit_and_the_queue_limit_still_applies(app: App) -> None:
    client = app.client
    queues = app.queues
    queues.set_priority_rate_limit("default", Priority.HIGH, limit=3, period=60)
    queues.set_priority_rate_limit("default", "medium", limit=2, period=60, burst=2)
    queues.set_priority_rate_limit("default", "low", limit=1, period=60)
    for level in ("high", "medium", "low"):
        enqueue(client, level, 4)
    assert levels(client, fetch(client)) == ["high", "medium", "medium", "low"]
    assert fetch(client).jobs == []
    config = queues.get_config("default")
    assert {p: (r.limit, r.period_seconds, r.burst) for p, r in config.priority_rate_limits.items()} == {
        Priority.HIGH: (3, 60.0, 1), Priority.MEDIUM: (2, 60.0, 2), Priority.LOW: (1, 60.0, 1),
    }  # fmt: skip
    # The queue's own limit is counted beside them: with it at 1 per minute nothing more starts even once
    # the level limits are lifted.
    queues.set_rate_limit("default", max_tasks_per_minute=1)
    for level in ("high", "medium", "low"):
        queues.remove_priority_rate_limit("default", level)
    assert len(fetch(client).jobs) == 1
    assert fetch(client).jobs == []
    assert queues.get_config("default").priority_rate_limits == {}


def test_weighted_policy_skips_a_limited_level(app: App) -> None:
    client = app.client
    app.queues.set_priority_policy("default", "weighted", weights=[1, 1, 1])
    app.queues.set_priority_rate_limit("default", "medium", max_tasks_per_hour=1)
    for level in ("high", "medium", "low"):
        enqueue(client, level, 3)
    got = levels(client, fetch(client, n=7))
    assert sorted(got) == ["high"] * 3 + ["low"] * 3 + ["medium"]


def test_an_enqueue_is_not_handed_past_a_level_limit(app: App) -> None:
    """A parked worker would get the task straight from enqueue: with level limits it is queued instead,
    so the limit is applied by the fetch that takes it."""
    client = app.client
    app.queues.set_priority_rate_limit("default", "high", max_tasks_per_hour=1)
    assert fetch(client, n=4, park_ms=5000).jobs == []  # nothing ready: the worker parks
    assert client.redis.hexists(client.queue_keys("default").parked, "w1")
    enqueue(client, "high", 2)
    assert client.queue_depth("default").ready["high"] == 2  # queued, not handed off
    assert len(fetch(client).jobs) == 1


@pytest.mark.parametrize(
    ("priority", "options", "field"),
    [
        ("urgent", {"max_tasks_per_second": 1}, "priority"),
        ("high", {}, "rate_limit"),
        ("high", {"max_tasks_per_second": 0}, "max_tasks_per_second"),
        ("high", {"max_tasks_per_second": 10**12}, "max_tasks_per_second"),
        ("high", {"limit": 1, "period": float("nan")}, "period"),
        ("high", {"max_tasks_per_second": 1, "burst": -1}, "burst"),
        ("\x00", {"max_tasks_per_second": 1}, "priority"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(
    app: App, priority: str, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        app.queues.set_priority_rate_limit("default", priority, **options)
    assert info.value.field == field
    assert app.queues.get_config("default").priority_rate_limits == {}


@pytest.mark.timeout(120)
def test_the_limit_holds_across_real_worker_processes(app: App, start_worker: Callable[..., Any]) -> None:
    """Two workers with plenty of free slots: high tasks start no faster than their level's limit while
    low tasks (no limit of their own) all run at once."""
    client = app.client
    app.queues.set_priority_rate_limit("default", "high", limit=2, period=1, burst=1)
    high = [client.enqueue("record", [], priority="high") for _ in range(6)]
    low = [client.enqueue("record", [], priority="low") for _ in range(6)]
    # Wall clock, to compare with the started_at times the Redis server (on this machine) recorded.
    start_worker("--pool", "thread", "--concurrency", "8")
    start_worker("--pool", "thread", "--concurrency", "8")
    for h in low:
        h.result(timeout=60)
    low_done = time.time()
    for h in high:
        h.result(timeout=60)
    starts = sorted(client.get_task(h.id).started_at or 0 for h in high)
    # 6 starts at 2 per second, burst 1: one every 0.5 s, so the 6th no earlier than 2.5 s after the 1st.
    assert starts[-1] - starts[0] >= 2.5 - 0.05
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g >= 0.5 - 0.05 for g in gaps), gaps
    assert low_done < starts[-1]  # low did not queue behind high's limit
