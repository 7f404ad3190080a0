"""GET /api/v1/workers/monitor/stats against real worker processes: a worker SIGKILLed while it runs a
task turns stale, then dead, its lease is listed as orphaned on its queue, and once another worker's
reaper recovers it the recovery is counted for that worker and that queue (by recover.lua itself)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until
from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.broker.lease_recovery import build_recover
from jobqueue.broker.redis_io import run_scripts
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(90)

READ = {"Authorization": "Bearer read-key"}


@pytest.fixture
def monitored(settings: Settings) -> Settings:
    # A lease long enough that "stale" (3 missed beats, 0.9 s) and "dead" (6 s) are seconds apart.
    return settings.model_copy(update={"lease_seconds": 6.0, "heartbeat_seconds": 0.3})


@pytest.fixture
def api(monitored: Settings) -> Iterator[TestClient]:
    app = create_app(monitored, ApiSettings(keys=SecretStr("read-key:read")))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def stats(api: TestClient) -> dict[str, Any]:
    r = api.get("/api/v1/workers/monitor/stats", headers=READ)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def state_of(body: dict[str, Any], worker_id: str) -> str | None:
    return next((w["state"] for w in body["by_worker"] if w["id"] == worker_id), None)


def test_killed_worker_goes_stale_then_dead_its_lease_orphaned_then_recovered_and_counted(
    api: TestClient, monitored: Settings, start_worker: Callable[..., Any]
) -> None:
    client = Client(monitored)
    try:
        victim = start_worker(
            "--worker-id", "victim", "--pool", "thread", "--queues", "mon", worker_settings=monitored
        )
        task_id = client.enqueue("cancellable", [60.0], queue="mon").id
        wait_until(lambda: client.get_task(task_id).status.value == "RUNNING", 30)
        wait_until(lambda: state_of(stats(api), "victim") == "live", 10)
        before = stats(api)
        assert before["thresholds"] == {"stale_after_seconds": pytest.approx(0.9), "dead_after_seconds": 6.0}
        assert before["orphaned_leases"] == [] and before["leases_recovered"]["total"] == 0

        victim.signal_group(signal.SIGKILL)
        wait_until(lambda: state_of(stats(api), "victim") == "stale", 10)
        assert stats(api)["orphaned_leases"] == []  # stale is not gone: its lease may still be renewed
        wait_until(lambda: state_of(stats(api), "victim") == "dead", 20)
        body = stats(api)
        assert body["workers"]["dead"] == 1
        [orphans] = body["orphaned_leases"]
        assert (orphans["queue"], orphans["count"]) == ("mon", 1)
        assert [(o["task_id"], o["worker"]) for o in orphans["leases"]] == [(task_id, "victim")]

        # A second worker on the queue reaps the expired lease from its heartbeat loop (as the scheduler
        # and the operator would), then runs the task again.
        start_worker("--worker-id", "heir", "--pool", "thread", "--queues", "mon", worker_settings=monitored)
        wait_until(lambda: stats(api)["leases_recovered"]["total"] == 1, 30)
        body = stats(api)
        assert body["orphaned_leases"] == []
        recovered = body["leases_recovered"]
        [by_worker] = recovered["by_worker"]
        assert (by_worker["worker"], by_worker["recovered"]) == ("victim", 1)
        [by_queue] = recovered["by_queue"]
        assert (by_queue["queue"], by_queue["recovered"]) == ("mon", 1)
        assert recovered["last_recovery_at"] == by_queue["last_recovery_at"] == by_worker["last_recovery_at"]
        assert abs(recovered["last_recovery_at"] - time.time()) < 60

        # Reaping again finds nothing: the count stays exact however many reapers run.
        run_scripts(client.redis, [build_recover(monitored, "mon") for _ in range(3)])
        assert stats(api)["leases_recovered"]["total"] == 1
    finally:
        client.close()


def test_no_workers_and_no_queues_is_an_empty_report(api: TestClient) -> None:
    body = stats(api)
    assert body["workers"] == {"live": 0, "stale": 0, "dead": 0, "total": 0}
    assert body["orphaned_leases"] == [] and body["leases_recovered"]["by_queue"] == []
    assert api.get("/api/v1/workers/monitor/stats").status_code == 401


def test_odd_worker_ids_and_garbled_records_do_not_break_the_report(
    api: TestClient, monitored: Settings
) -> None:
    client = Client(monitored)
    try:
        keys = client.queue_keys("odd")
        registry = client.global_keys.workers
        odd = 'w\x00"<b>\u202e' + "x" * 300
        now_ms = time.time() * 1000
        client.redis.sadd(client.global_keys.queues, "odd")
        # A far-future heartbeat (a worker with a wrong clock), one from 1970 and one with no record.
        client.redis.zadd(registry, {odd: now_ms, "future": 1e300, "ancient": 1.0, "minus": float("-inf")})
        client.redis.hset(client.global_keys.worker(odd), "status", "IDLE")
        client.redis.hset(client.global_keys.worker("future"), "status", "IDLE")
        garbled = {"t:" + odd: "nan?", "w:": "1", "w:big": "1e400", "last_at": "1e400", "x": "y"}
        client.redis.hset(keys.recoveries, mapping={f"w:{odd}": "2", **garbled})
        # A lease whose task hash is gone (no worker named), and one held by the odd worker.
        client.redis.zadd(keys.leases, {"odd.gone": 1.0, "odd.mine": now_ms + 60_000})
        client.redis.hset(keys.task("odd.mine"), "worker", odd)
        body = stats(api)
        states = {w["id"]: w["state"] for w in body["by_worker"]}
        assert states == {odd: "live", "future": "live", "ancient": "dead", "minus": "dead"}
        assert body["leases_recovered"]["by_queue"] == [
            {"queue": "odd", "recovered": 3, "last_recovery_at": None}
        ]
        [orphans] = body["orphaned_leases"]
        assert [(o["task_id"], o["worker"]) for o in orphans["leases"]] == [("odd.gone", "")]
    finally:
        client.close()
