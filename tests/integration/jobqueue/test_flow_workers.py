"""Flow control with real worker processes: rate limit, runtime changes, priorities, pause, max in-flight.

Start times are the ``started`` events of the queue's stream: written by fetch.lua on the Redis clock in
lease order, so they measure what the limiter decided, not how fast a loaded test machine ran the tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import runs, wait_until

from jobqueue import App, Settings, TaskStatus
from jobqueue.broker.enqueue import make_request

pytestmark = pytest.mark.timeout(90)
StartWorker = Callable[..., Any]
THREADS = ("--pool", "thread", "--concurrency", "2")


@pytest.fixture
def app(settings: Settings) -> App:
    a = App(settings=settings)
    yield a
    a.close()


def starts(app: App, queue: str = "default") -> list[tuple[int, str]]:
    """(server ms, task id) of every lease, in lease order."""
    events = app.client.redis.xrange(app.client.queue_keys(queue).events)
    return [(int(f["ts"]), f["id"]) for _, f in events if f["event"] == "started"]


def enqueue(app: App, n: int, name: str = "add", priority: str = "medium", **kwargs: object) -> list[str]:
    args = [1, 2] if name == "add" else []
    requests = [make_request(name, args, kwargs, priority=priority) for _ in range(n)]
    return [h.id for h in app.client.enqueue_many(requests)]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_rate_limit_holds_across_four_worker_processes(app: App, start_worker: StartWorker) -> None:
    app.queues.set_rate_limit("default", max_tasks_per_minute=120, burst=20)
    enqueue(app, 320)
    workers = [start_worker(*THREADS) for _ in range(4)]
    wait_until(lambda: len(starts(app)) >= 1, timeout=60)
    t0 = starts(app)[0][0]
    wait_until(lambda: starts(app)[-1][0] >= t0 + 61_000, timeout=120, interval=0.5)
    for w in workers:
        assert w.terminate() == 0
    times = [ts for ts, _ in starts(app)]
    # Any 60 s window: at most burst + limit starts.
    busiest = max(sum(1 for t in times if s <= t < s + 60_000) for s in times if s <= times[-1] - 60_000)
    first_window = sum(1 for t in times if t0 <= t < t0 + 60_000)
    # Steady state (after the burst has been spent): 2 per second.
    steady = sum(1 for t in times if t0 + 15_000 <= t < t0 + 60_000) / 45
    print(f"\nrate limit 120/min burst 20, 4 workers: first 60 s window {first_window} starts, "
          f"busiest 60 s window {busiest}, steady state {steady:.3f}/s")  # fmt: skip
    assert busiest <= 140
    assert first_window <= 140
    assert abs(steady - 2.0) <= 0.1


def test_runtime_limit_change_takes_effect_within_one_second(app: App, start_worker: StartWorker) -> None:
    app.queues.set_rate_limit("default", max_tasks_per_second=2)
    enqueue(app, 200)
    start_worker(*THREADS)
    start_worker(*THREADS)
    wait_until(lambda: len(starts(app)) >= 3, timeout=60)
    seconds, micros = app.client.redis.time()
    changed_at = seconds * 1000 + micros // 1000
    app.queues.set_rate_limit("default", max_tasks_per_second=50)
    wait_until(lambda: starts(app)[-1][0] >= changed_at + 2000, timeout=30)
    after = [ts - changed_at for ts, _ in starts(app) if ts > changed_at]
    first_second = sum(1 for t in after if t <= 1000)
    second_second = sum(1 for t in after if 1000 < t <= 2000)
    assert first_second >= 10  # the old limit allowed 2
    assert second_second <= 51  # and the new one holds


def test_strict_priority_every_high_starts_before_any_low(app: App, start_worker: StartWorker) -> None:
    app.queues.pause("default")
    low = set(enqueue(app, 20, priority="low"))
    high = set(enqueue(app, 20, priority="high"))
    start_worker(*THREADS)
    start_worker(*THREADS)
    app.queues.resume("default")
    wait_until(lambda: len(starts(app)) == 40, timeout=60)
    order = [task_id for _, task_id in starts(app)]
    assert set(order[:20]) == high and set(order[20:]) == low


def test_weighted_low_gets_its_share_under_a_flood_of_high(app: App, start_worker: StartWorker) -> None:
    app.queues.pause("default")
    app.queues.set_priority_policy("default", "weighted", weights=(6, 3, 1))
    high = set(enqueue(app, 200, priority="high"))
    low = set(enqueue(app, 40, priority="low"))
    start_worker(*THREADS)
    start_worker(*THREADS)
    app.queues.resume("default")
    wait_until(lambda: len(starts(app)) >= 100, timeout=60)
    first_100 = [task_id for _, task_id in starts(app)[:100]]
    lows = sum(1 for t in first_100 if t in low)
    assert 9 <= lows <= 11  # 1 slot in 10 (medium is empty: its slots go to high)
    assert all(t in high or t in low for t in first_100)


def test_paused_queue_hands_out_nothing_while_enqueue_works(app: App, start_worker: StartWorker) -> None:
    app.queues.pause("default")
    start_worker(*THREADS)
    wait_until(app.client.list_workers, timeout=60)
    ids = enqueue(app, 5)
    time.sleep(1.5)
    assert starts(app) == []
    assert app.client.queue_depth("default").total_ready == 5
    seconds, micros = app.client.redis.time()
    resumed_at = seconds * 1000 + micros // 1000
    app.queues.resume("default")
    wait_until(lambda: all(app.client.get_task(i).status == TaskStatus.SUCCESS for i in ids), timeout=30)
    # The resume wakes the idle worker at once (its own recheck is once a second).
    assert starts(app)[0][0] - resumed_at < 1000


def test_max_in_flight_holds_across_workers(app: App, start_worker: StartWorker) -> None:
    app.queues.set_max_in_flight("default", 2)
    ids = enqueue(app, 12, name="record", sleep=0.3)
    for _ in range(3):
        start_worker("--pool", "thread", "--concurrency", "3")
    wait_until(lambda: all(app.client.get_task(i).status == TaskStatus.SUCCESS for i in ids), timeout=60)
    running = peak = 0
    for _, what, _ in runs(app.client):
        running += 1 if what == "start" else -1
        peak = max(peak, running)
    assert peak == 2
