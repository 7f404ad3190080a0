"""Queue configuration and schedule routes of the REST API, against a real Redis server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from jobqueue import App, Settings
from jobqueue.errors import ScheduleCorrupt
from jobqueue.keys import GlobalKeys
from jobqueue.schedules.registry import fire_due_schedules
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(60)
ADMIN = {"Authorization": "Bearer a"}
READ = {"Authorization": "Bearer r"}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, ApiSettings(keys=SecretStr("a:admin,r:read")))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_rate_limit_lifecycle(api: TestClient) -> None:
    r = api.put("/api/v1/queues/emails/rate-limit", json={"limit": 100, "period_seconds": 60, "burst": 20},
                headers=ADMIN)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {"limit": 100, "period_seconds": 60.0, "burst": 20, "enabled": True}
    config = api.get("/api/v1/queues/emails/config", headers=READ).json()
    assert config["rate_limit"]["limit"] == 100 and config["paused"] is False
    stats = api.get("/api/v1/queues/emails/rate-limit/stats", headers=READ).json()
    assert stats["remaining"] == 20 and stats["wait_seconds"] == 0
    assert api.post("/api/v1/queues/emails/rate-limit/reset", headers=ADMIN).status_code == 200
    assert api.delete("/api/v1/queues/emails/rate-limit", headers=ADMIN).status_code == 204
    assert api.get("/api/v1/queues/emails/config", headers=READ).json()["rate_limit"] is None
    bad = api.put("/api/v1/queues/emails/rate-limit", json={"limit": 0, "period_seconds": 1}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["field"] == "limit"
    assert api.put("/api/v1/queues/emails/rate-limit", json={"limit": 1, "period_seconds": 1},
                   headers=READ).status_code == 403  # fmt: skip


def test_priority_rate_limits_over_rest(api: TestClient) -> None:
    r = api.put("/api/v1/queues/emails/rate-limit/low", json={"limit": 5, "period_seconds": 1, "burst": 2},
                headers=ADMIN)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {"priority": "low", "limit": 5, "period_seconds": 1.0, "burst": 2, "enabled": True}
    api.put("/api/v1/queues/emails/rate-limit", json={"limit": 100, "period_seconds": 60}, headers=ADMIN)
    config = api.get("/api/v1/queues/emails/config", headers=READ).json()
    assert config["priority_rate_limits"] == {
        "low": {"limit": 5, "period_seconds": 1.0, "burst": 2, "enabled": True}
    }
    assert config["rate_limit"]["limit"] == 100  # the queue's own limit is apart
    assert api.delete("/api/v1/queues/emails/rate-limit/low", headers=ADMIN).status_code == 204
    config = api.get("/api/v1/queues/emails/config", headers=READ).json()
    assert config["priority_rate_limits"] == {} and config["rate_limit"]["limit"] == 100
    # Bad input: a 422 naming the field, nothing written.
    for level, body, field in [
        ("urgent", {"limit": 1, "period_seconds": 1}, "priority"),
        ("high", {"limit": 0, "period_seconds": 1}, "limit"),
        ("high", {"limit": 1, "period_seconds": 0}, "period_seconds"),
        ("high", {"limit": 10**30, "period_seconds": 1}, "limit"),
        ("high", {"limit": 1, "period_seconds": 1, "enabled": False}, "enabled"),
    ]:
        bad = api.put(f"/api/v1/queues/emails/rate-limit/{level}", json=body, headers=ADMIN)
        assert bad.status_code == 422 and bad.json()["field"] == field, (level, body, bad.text)
    assert api.get("/api/v1/queues/emails/config", headers=READ).json()["priority_rate_limits"] == {}
    assert api.put("/api/v1/queues/emails/rate-limit/high", json={"limit": 1, "period_seconds": 1},
                   headers=READ).status_code == 403  # fmt: skip


def test_pause_resume_max_in_flight_and_policy(api: TestClient) -> None:
    assert api.post("/api/v1/queues/default/pause", headers=ADMIN).json()["paused"] is True
    assert api.post("/api/v1/queues/default/resume", headers=ADMIN).json()["paused"] is False
    r = api.put("/api/v1/queues/default/max-in-flight", json={"max_in_flight": 3}, headers=ADMIN)
    assert r.json()["max_in_flight"] == 3
    r = api.put("/api/v1/queues/default/priority-policy", json={"policy": "weighted", "weights": [6, 3, 1]},
                headers=ADMIN)  # fmt: skip
    assert (r.json()["priority_policy"], r.json()["weights"]) == ("weighted", [6, 3, 1])
    bad = api.put("/api/v1/queues/default/priority-policy", json={"policy": "random"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["field"] == "policy"


def test_retry_defaults_and_max_lost_leases(api: TestClient) -> None:
    body = {"max_retries": 4, "backoff": "linear", "base_seconds": 2, "max_seconds": 60, "jitter": False}
    r = api.put("/api/v1/queues/emails/retry-defaults", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == {**body, "base_seconds": 2.0, "max_seconds": 60.0}
    r = api.put("/api/v1/queues/emails/max-lost-leases", json={"max_lost_leases": 1}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["max_lost_leases"] == 1
    config = api.get("/api/v1/queues/emails/config", headers=READ).json()
    assert config["retry_defaults"]["max_retries"] == 4 and config["max_lost_leases"] == 1
    for field, value in [("max_retries", -1), ("backoff", "random"), ("base_seconds", -1)]:
        bad = api.put("/api/v1/queues/emails/retry-defaults", json={**body, field: value}, headers=ADMIN)
        assert bad.status_code == 422 and bad.json()["field"] == field, bad.text
    bad = api.put("/api/v1/queues/emails/max-lost-leases", json={"max_lost_leases": 5000}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["field"] == "max_lost_leases"
    assert api.put("/api/v1/queues/emails/retry-defaults", json=body, headers=READ).status_code == 403
    r = api.delete("/api/v1/queues/emails/retry-defaults", headers=ADMIN)
    assert r.status_code == 200 and r.json()["retry_defaults"] is None
    r = api.put("/api/v1/queues/emails/max-lost-leases", json={"max_lost_leases": None}, headers=ADMIN)
    assert r.json()["max_lost_leases"] is None


def test_schedule_lifecycle(api: TestClient) -> None:
    body = {"name": "nightly", "cron": "0 2 * * *", "task": "add", "timezone": "America/New_York",
            "args": [1, 2], "concurrency_policy": "Forbid"}  # fmt: skip
    r = api.post("/api/v1/schedules", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["next_fire_at"] is not None and created["paused"] is False
    assert [s["name"] for s in api.get("/api/v1/schedules", headers=READ).json()] == ["nightly"]
    assert api.post("/api/v1/schedules/nightly/pause", headers=ADMIN).json()["paused"] is True
    assert api.post("/api/v1/schedules/nightly/resume", headers=ADMIN).json()["paused"] is False
    assert api.delete("/api/v1/schedules/nightly", headers=ADMIN).status_code == 204
    assert api.get("/api/v1/schedules/nightly", headers=READ).status_code == 404
    bad = api.post("/api/v1/schedules", json={**body, "cron": "every day"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["field"] == "cron"
    bad = api.post("/api/v1/schedules", json={**body, "timezone": "Mars/Olympus"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["field"] == "timezone"


def test_a_corrupt_stored_schedule_hides_nothing_else(api: TestClient, settings: Settings) -> None:
    body = {"name": "nightly", "cron": "* * * * *", "task": "add", "args": [1, 2]}
    assert api.post("/api/v1/schedules", json=body, headers=ADMIN).status_code == 201
    assert api.post("/api/v1/schedules", json={**body, "name": "broken"}, headers=ADMIN).status_code == 201
    keys = GlobalKeys(settings.key_prefix)
    app = App(settings=settings)
    try:
        # Written by hand (or by an incompatible version): not a definition any more.
        app.client.redis.hset(keys.schedules, "broken", '{"cron": "every day"')
        seconds, _ = app.client.redis.time()
        due = (seconds - 120) * 1000
        app.client.redis.zadd(keys.schedules_due, {"broken": due, "nightly": due})
        report = fire_due_schedules(app.client, "test")  # fires the good one, logs the broken one
        with pytest.raises(ScheduleCorrupt):
            app.schedules.get("broken")
    finally:
        app.close()
    assert report.fired >= 1
    assert [s["name"] for s in api.get("/api/v1/schedules", headers=READ).json()] == ["nightly"]
    one = api.get("/api/v1/schedules/broken", headers=READ)
    assert one.status_code == 409
    assert one.json()["field"] == "name" and "broken" in one.json()["message"]
    metrics = api.get("/metrics", headers=READ)
    assert metrics.status_code == 200
    assert f'jobqueue_schedule_fires_total{{schedule="nightly"}} {float(report.fired)}' in metrics.text
    # The way out the error names: delete it and register it again.
    assert api.delete("/api/v1/schedules/broken", headers=ADMIN).status_code == 204
    assert api.post("/api/v1/schedules", json={**body, "name": "broken"}, headers=ADMIN).status_code == 201


@pytest.mark.parametrize(
    ("queue", "status"),
    [
        ("Billing_EU", 200),
        ("a" * 64, 200),
        ("schedules", 422),
        ("a" * 65, 422),
        ("emails.v2", 422),
        ("%C3%A9", 422),
    ],
)
def test_queue_names_follow_the_one_rule(api: TestClient, queue: str, status: int) -> None:
    # The same rule as the broker and the CRDs (docs/configuration.md, "Names"): what the CRD accepts the API
    # accepts, and a name it refuses is a 422 naming the queue, never a 500.
    r = api.put(f"/api/v1/queues/{queue}/retry-defaults", json={"max_retries": 2}, headers=ADMIN)
    assert r.status_code == status, r.text
    if status == 422:
        assert "queue" in r.text


def test_retry_defaults_take_the_cores_backoff_names_only(api: TestClient) -> None:
    for name in ("exponential", "linear", "fibonacci", "constant"):
        body = {"max_retries": 1, "backoff": name}
        r = api.put("/api/v1/queues/emails/retry-defaults", json=body, headers=ADMIN)
        assert r.status_code == 200 and r.json()["backoff"] == name, r.text
    # The CRD's old spellings are the operator's to map; the REST API never had them.
    r = api.put(
        "/api/v1/queues/emails/retry-defaults", json={"max_retries": 1, "backoff": "Fixed"}, headers=ADMIN
    )
    assert r.status_code == 422 and "backoff" in r.text
