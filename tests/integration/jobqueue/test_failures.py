"""Correctness under failure: killed, stalled and drained workers, and a Redis restart, under load."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jq_testing import runs, wait_until

from jobqueue import Client, Settings, TaskStatus
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import build_fetch
from jobqueue.broker.redis_io import run_script
from jobqueue.embedded.redis_server import RedisServer, free_port
from jobqueue.services.scheduler import Scheduler

StartWorker = Callable[..., Any]


def succeeded(client: Client, queue: str = "default") -> int:
    return int(client.redis.hget(client.queue_keys(queue).stats, "succeeded") or 0)


def run_counts(client: Client) -> tuple[collections.Counter[str], collections.Counter[str]]:
    starts: collections.Counter[str] = collections.Counter()
    dones: collections.Counter[str] = collections.Counter()
    for task_id, what, _pid in runs(client):
        (starts if what == "start" else dones)[task_id] += 1
    return starts, dones


@pytest.mark.timeout(60)
def test_sigkill_mid_task_completes_exactly_once_elsewhere(client: Client, start_worker: StartWorker) -> None:
    doomed = start_worker("--concurrency", "1", "--worker-id", "doomed")
    h = client.enqueue("record", [], {"sleep": 1.5})
    wait_until(lambda: len(runs(client)) == 1, timeout=20)
    doomed.signal_group(signal.SIGKILL)
    start_worker("--concurrency", "1", "--worker-id", "survivor")
    assert h.result(timeout=30) == h.id
    record = client.get_task(h.id)
    assert (record.status, record.worker, record.attempts, record.lost_leases) == (
        TaskStatus.SUCCESS, "survivor", 2, 1,
    )  # fmt: skip
    time.sleep(2)  # the killed worker's task process must not finish anything either
    starts, dones = run_counts(client)
    assert starts[h.id] == 2 and dones[h.id] == 1


@pytest.mark.timeout(60)
def test_stalled_worker_cannot_complete_after_losing_its_lease(
    client: Client, start_worker: StartWorker
) -> None:
    stalled = start_worker("--concurrency", "1", "--worker-id", "stalled")
    h = client.enqueue("record", [], {"sleep": 1.0})
    wait_until(lambda: len(runs(client)) == 1, timeout=20)
    stalled.signal_group(signal.SIGSTOP)  # a long GC pause / frozen VM
    try:
        start_worker("--concurrency", "1", "--worker-id", "fresh")
        assert h.result(timeout=30) == h.id
        assert client.get_task(h.id).worker == "fresh"
    finally:
        stalled.signal_group(signal.SIGCONT)
    # The stalled attempt finishes its work but its ack carries a stale fencing token: refused as fenced.
    wait_until(lambda: "success not recorded: a newer attempt holds the task" in stalled.log(), timeout=20)
    record = client.get_task(h.id)
    assert (record.status, record.worker, record.attempts) == (TaskStatus.SUCCESS, "fresh", 2)


@pytest.mark.timeout(180)
def test_2000_tasks_over_4_workers_none_lost_none_twice(client: Client, start_worker: StartWorker) -> None:
    total = 2000
    # 2 ms each: without it one worker could run all 2,000 before the others finished starting, and the
    # spread below would test start-up timing, not the sharing of one queue.
    client.enqueue_many([make_request("record", [], {"sleep": 0.002}) for _ in range(total)])
    for i in range(4):
        start_worker("--concurrency", "2", "--worker-id", f"w{i}")
    wait_until(lambda: succeeded(client) >= total, timeout=150, interval=0.2)
    starts, dones = run_counts(client)
    assert len(dones) == total and set(dones.values()) == {1}
    assert set(starts.values()) == {1}
    pids = {pid for _, _, pid in runs(client)}
    assert len(pids) >= 4  # really spread over the workers' processes
    depth = client.queue_depth("default")
    assert (depth.total_ready, depth.in_flight, depth.dead) == (0, 0, 0)


@pytest.mark.timeout(120)
def test_sigterm_under_load_loses_nothing(client: Client, start_worker: StartWorker) -> None:
    total = 300
    handles = client.enqueue_many([make_request("record", [], {"sleep": 0.02}) for _ in range(total)])
    leaving = start_worker("--concurrency", "2", "--worker-id", "leaving", "--grace", "10")
    wait_until(lambda: succeeded(client) >= 30, timeout=30)
    assert leaving.terminate() == 0  # drains: finishes what it runs, exits 0
    start_worker("--concurrency", "2", "--worker-id", "staying")
    wait_until(lambda: succeeded(client) >= total, timeout=90, interval=0.2)
    starts, dones = run_counts(client)
    assert {h.id for h in handles} == set(dones) and set(dones.values()) == {1}
    assert set(starts.values()) == {1}  # a graceful drain never runs a task twice


@pytest.mark.timeout(120)
def test_sigterm_past_grace_hands_unfinished_tasks_back(client: Client, start_worker: StartWorker) -> None:
    handles = client.enqueue_many([make_request("record", [], {"sleep": 3}) for _ in range(2)])
    leaving = start_worker("--concurrency", "2", "--worker-id", "leaving", "--grace", "0.3")
    wait_until(lambda: len(runs(client)) == 2, timeout=30)
    started = time.monotonic()
    assert leaving.terminate() == 0
    assert time.monotonic() - started < 10
    depth = client.queue_depth("default")
    assert depth.ready["medium"] == 2 and depth.in_flight == 0  # handed back at once, no lease expiry
    start_worker("--concurrency", "2", "--worker-id", "staying")
    for h in handles:
        assert h.result(timeout=60) == h.id


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis-aof", port=free_port(), appendonly=True).start()
    yield server
    server.stop()


@pytest.mark.timeout(180)
def test_redis_restart_under_load_loses_no_acknowledged_task(
    restartable_redis: RedisServer, settings: Settings, start_worker: StartWorker
) -> None:
    s = settings.model_copy(update={"redis_url": settings.redis_url.__class__(restartable_redis.url)})
    client = Client(s)
    total = 600
    # The task itself writes to Redis (to count its runs), so while Redis is down it fails like any task
    # whose dependency is down: retries cover that; the broker must not lose anything meanwhile.
    handles = client.enqueue_many(
        [make_request("record", [], {"sleep": 0.01}, max_retries=10) for _ in range(total)]
    )
    for i in range(2):
        start_worker("--concurrency", "2", "--worker-id", f"w{i}", worker_settings=s)
    wait_until(lambda: succeeded(client) >= 100, timeout=60)
    restartable_redis.stop()
    time.sleep(1.5)
    restartable_redis.start()
    scheduler = Scheduler(client)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        scheduler.tick()
        if (
            all(client.get_task(h.id).status == TaskStatus.SUCCESS for h in handles[-50:])
            and succeeded(client) >= total
        ):
            break
        time.sleep(0.5)
    statuses = collections.Counter(client.get_task(h.id).status for h in handles)
    assert statuses == {TaskStatus.SUCCESS: total}
    _starts, dones = run_counts(client)
    assert {h.id for h in handles} <= set(dones)
    client.close()


@pytest.mark.timeout(60)
def test_scheduler_process_recovers_expired_leases(settings: Settings, tmp_path: Path) -> None:
    client = Client(settings)
    h = client.enqueue("add", [1, 2])
    # Lease it as a worker that then vanishes.
    run_script(client.redis, build_fetch(settings, "default", 1, "vanished"))
    env = {
        **os.environ,
        "JOBQUEUE_REDIS_URL": settings.redis_url.get_secret_value(),
        "JOBQUEUE_KEY_PREFIX": settings.key_prefix,
    }
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "jobqueue", "scheduler", "--interval", "0.2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: client.get_task(h.id).status == TaskStatus.QUEUED, timeout=20)
        record = client.get_task(h.id)
        assert record.lost_leases == 1 and "vanished" in (record.error or "")
    finally:
        scheduler.terminate()
        assert scheduler.wait(10) == 0
        client.close()
