"""History and analytics routes of the REST API against real Redis, a real worker and a real PostgreSQL
record (written by a real Recorder), and their 503 when the record is missing or down."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from record_helpers import drain, known_workload, make_recorder

from jobqueue import Client, Settings
from jobqueue.embedded.postgres_server import PostgresServer
from jobqueue.embedded.redis_server import free_port
from jobqueue.record.analytics import Granularity, rollup
from jobqueue.schedules.registry import ScheduleRegistry, fire_due_schedules
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(90)

READ = {"Authorization": "Bearer read-key"}
SUBMIT = {"Authorization": "Bearer submit-key"}
KEYS = "read-key:read,submit-key:submit"
HOUR = dt.timedelta(hours=1)


def _api(settings: Settings, database_url: str | None) -> TestClient:
    with_db = settings.model_copy(update={"database_url": SecretStr(database_url) if database_url else None})
    return TestClient(create_app(with_db, ApiSettings(keys=SecretStr(KEYS))), raise_server_exceptions=False)


@pytest.fixture
def api(settings: Settings, database_url: str) -> Iterator[TestClient]:
    with _api(settings, database_url) as client:
        yield client


@pytest.fixture
def worked(
    api: TestClient, client: Client, pg_pool: ConnectionPool, start_worker: Callable[..., Any]
) -> dict[str, list[str]]:
    """Five 'add' tasks that succeed and two 'fail_with' tasks dead-lettered, run by a real worker and
    recorded by a real Recorder."""
    start_worker()
    adds = [
        api.post("/api/v1/tasks", json={"name": "add", "args": [i, i]}, headers=SUBMIT).json()["ids"][0]
        for i in range(5)
    ]
    bad = api.post(
        "/api/v1/tasks/batch", json={"tasks": [{"name": "fail_with", "args": ["value"]}] * 2}, headers=SUBMIT
    ).json()["ids"]

    def finished() -> bool:
        statuses = {api.get(f"/api/v1/tasks/{t}", headers=READ).json()["status"] for t in adds + bad}
        return statuses <= {"SUCCESS", "FAILED"}

    wait_until(finished, 30)
    drain(make_recorder(client, pg_pool))
    return {"add": adds, "bad": bad}


def test_search_by_status_name_and_error_text(api: TestClient, worked: dict[str, list[str]]) -> None:
    r = api.get("/api/v1/tasks?status=FAILED", headers=READ)
    assert r.status_code == 200, r.text
    assert sorted(t["id"] for t in r.json()["items"]) == sorted(worked["bad"])
    assert r.json()["items"][0]["error"].startswith("ValueError: bad input")

    both = api.get("/api/v1/tasks?status=FAILED&status=SUCCESS&limit=1000", headers=READ).json()
    assert len(both["items"]) == 7 and both["has_more"] is False
    named = api.get("/api/v1/tasks?name=add&queue=default", headers=READ).json()["items"]
    assert sorted(t["id"] for t in named) == sorted(worked["add"])
    assert {t["result"] for t in named} == {0, 2, 4, 6, 8}
    by_error = api.get("/api/v1/tasks?error=BAD%20INPUT", headers=READ).json()["items"]
    assert sorted(t["id"] for t in by_error) == sorted(worked["bad"])
    assert api.get("/api/v1/tasks?error=no%20such%20text", headers=READ).json()["items"] == []


def test_search_pages_and_sorts(api: TestClient, worked: dict[str, list[str]]) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        page = api.get(
            f"/api/v1/tasks?name=add&sort=enqueued_at&limit=2&offset={offset}", headers=READ
        ).json()
        seen += [t["id"] for t in page["items"]]
        offset += 2
        if not page["has_more"]:
            break
    assert seen == worked["add"]  # oldest first: the submission order
    newest = api.get("/api/v1/tasks?name=add&limit=1", headers=READ).json()["items"]
    assert [t["id"] for t in newest] == [worked["add"][-1]]  # default sort: -enqueued_at
    until = dt.datetime.now(dt.UTC) - HOUR
    old = api.get("/api/v1/tasks", params={"until": until.isoformat()}, headers=READ).json()
    assert old["items"] == []


def test_history_lists_every_transition_in_order(api: TestClient, worked: dict[str, list[str]]) -> None:
    r = api.get(f"/api/v1/tasks/{worked['add'][0]}/history", headers=READ)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["event"] for e in body["events"]] == ["enqueued", "started", "succeeded"]
    times = [e["ts"] for e in body["events"]]
    assert times == sorted(times)
    assert (body["task"]["status"], body["task"]["result"], body["failures"]) == ("SUCCESS", 0, [])
    failed = api.get(f"/api/v1/tasks/{worked['bad'][0]}/history", headers=READ).json()
    assert [e["event"] for e in failed["failures"]] == ["dead_lettered"]
    missing = api.get("/api/v1/tasks/default.0123456789abcdef0123456789abcdef/history", headers=READ)
    assert (missing.status_code, missing.json()["field"]) == (404, "task_id")


def test_dead_letter_history_outlives_a_purge(api: TestClient, worked: dict[str, list[str]]) -> None:
    body = api.get("/api/v1/dead-letters/history?queue=default&name=fail_with", headers=READ).json()
    assert sorted(d["task_id"] for d in body["items"]) == sorted(worked["bad"])
    assert {d["reason"] for d in body["items"]} == {"not_retryable"}
    assert api.get("/api/v1/dead-letters/history?name=add", headers=READ).json()["items"] == []


def test_live_routes_still_answer_beside_the_search(api: TestClient, worked: dict[str, list[str]]) -> None:
    # GET /api/v1/tasks (search) must not swallow GET /api/v1/tasks/{id} (live state from Redis).
    live = api.get(f"/api/v1/tasks/{worked['add'][1]}", headers=READ).json()
    assert (live["id"], live["result"]) == (worked["add"][1], 2)


def test_bad_search_parameters_name_the_field(api: TestClient) -> None:
    cases = {
        "status=DONE": "status.0",
        "limit=0": "limit",
        "offset=-1": "offset",
        "sort=args": "sort",
        "since=yesterday": "since",
        "since=2026-01-01T00:00:00": "since",  # naive: ambiguous, refused
        "error=a%00b": "error",
    }
    for query, field in cases.items():
        r = api.get(f"/api/v1/tasks?{query}", headers=READ)
        assert (r.status_code, r.json().get("field")) == (422, field), (query, r.text)
    assert api.get("/api/v1/metrics?window=0", headers=READ).json()["field"] == "window"
    assert api.get("/api/v1/tasks").status_code == 401


def test_metrics_match_a_known_workload(api: TestClient, client: Client, pg_pool: ConnectionPool) -> None:
    # Events with chosen times, five minutes old at most: the default one-hour window covers all of them.
    base = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=40)
    known_workload(client, int(base.timestamp() * 1000))
    drain(make_recorder(client, pg_pool))
    r = api.get("/api/v1/metrics?queue=a&name=work", headers=READ)
    assert r.status_code == 200, r.text
    work = r.json()["totals"]
    assert (work["enqueued"], work["succeeded"], work["failed"]) == (100, 100, 0)
    assert work["duration_ms"]["p50"] == pytest.approx(50.5)
    assert work["duration_ms"]["p95"] == pytest.approx(95.05)
    assert work["duration_ms"]["p99"] == pytest.approx(99.01)
    assert work["success_rate"] == 1.0
    assert work["throughput"]["completed_per_second"] == pytest.approx(100 / 3600)

    body = api.get("/api/v1/metrics", headers=READ).json()
    overall = body["totals"]
    assert (overall["enqueued"], overall["completed"]) == (130, 115)
    assert overall["failure_rate"] == pytest.approx(10 / 110)
    assert overall["throughput"]["enqueued_per_second"] == pytest.approx(130 / 3600)
    [bad] = [b for b in body["breakdown"] if (b["queue"], b["name"]) == ("a", "bad")]
    assert (bad["failed"], bad["retried"], bad["duration_ms"]["p99"]) == (10, 10, 1000)
    # Live state comes from Redis: the helper only wrote events, so queues exist but hold nothing.
    assert {q["queue"] for q in body["live"]["queues"]} == {"a", "b"}
    assert (body["live"]["workers"], body["live"]["utilization"]) == (0, None)

    now = dt.datetime.now(dt.UTC)
    rollup(pg_pool, Granularity.HOUR, now - 2 * HOUR, now)
    rollup(pg_pool, Granularity.DAY, now - 2 * HOUR, now)
    hourly = api.get("/api/v1/metrics/hourly?queue=a", headers=READ).json()
    assert sum(b["succeeded"] for b in hourly) == 100 and {b["name"] for b in hourly} == {"work", "bad"}
    daily = api.get("/api/v1/metrics/daily?name=work", headers=READ).json()
    assert sum(b["enqueued"] for b in daily) == 120  # queue a: 100, queue b: 20


def test_postgres_down_gives_503_but_submission_works(settings: Settings) -> None:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    with _api(settings, closed) as api:
        for path in (
            "/api/v1/tasks",
            "/api/v1/metrics",
            "/api/v1/metrics/hourly",
            "/api/v1/dead-letters/history",
        ):
            r = api.get(path, headers=READ)
            assert (r.status_code, r.json()["error"]) == (503, "unavailable"), (path, r.text)
            assert r.headers["Retry-After"]
        r = api.post("/api/v1/tasks", json={"name": "add", "args": [1, 2]}, headers=SUBMIT)
        assert r.status_code == 201
        assert api.get(f"/api/v1/tasks/{r.json()['ids'][0]}", headers=READ).json()["status"] == "QUEUED"
        assert api.get("/api/v1/queues/default", headers=READ).status_code == 200
        # Still ready: submission works without the record, so the API stays in its Service.
        ready = api.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "ok", "redis": "up", "postgres": "down"})


def test_without_a_database_the_record_routes_say_so(settings: Settings) -> None:
    with _api(settings, None) as api:
        r = api.get("/api/v1/tasks/default.0123456789abcdef0123456789abcdef/history", headers=READ)
        assert (r.status_code, r.json()["error"]) == (503, "record_not_configured")
        ready = api.get("/readyz")
        assert (ready.status_code, ready.json()["postgres"]) == (200, "not_configured")


def test_readyz_with_a_database(api: TestClient) -> None:
    assert api.get("/readyz").json() == {"status": "ok", "redis": "up", "postgres": "up"}


def test_extreme_times_never_give_a_server_error(api: TestClient) -> None:
    for path in (
        "/api/v1/tasks",
        "/api/v1/metrics/hourly",
        "/api/v1/metrics/daily",
        "/api/v1/dead-letters/history",
    ):
        for since, until in (
            ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"),
            ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"),
        ):
            r = api.get(path, params={"since": since, "until": until}, headers=READ)
            assert r.status_code in (200, 422), (path, since, until, r.text)
    r = api.get("/api/v1/metrics/hourly", params={"until": "0001-01-01T00:00:00Z"}, headers=READ)
    assert (r.status_code, r.json()["field"]) == (422, "until")


def test_schedule_runs_are_listed_newest_first_and_paged(
    api: TestClient, client: Client, pg_pool: ConnectionPool
) -> None:
    registry = ScheduleRegistry(client)
    registry.register("tick", cron="* * * * * *", task="add", concurrency_policy="Forbid")

    def fired_and_skipped() -> bool:
        fire_due_schedules(client, "test")
        info = registry.get("tick")
        return info.fired >= 1 and info.skipped >= 2

    wait_until(fired_and_skipped, 15, interval=0.05)
    registry.pause("tick")
    drain(make_recorder(client, pg_pool))
    runs = api.get("/api/v1/schedules/tick/runs?limit=1000", headers=READ).json()
    fire_times = [r["fire_time"] for r in runs["items"]]
    assert fire_times == sorted(fire_times, reverse=True) and runs["has_more"] is False
    assert runs["items"][-1]["status"] == "fired" and runs["items"][-1]["task_id"]
    first = api.get("/api/v1/schedules/tick/runs?limit=1&status=skipped", headers=READ).json()
    assert first["has_more"] is True and first["items"][0]["status"] == "skipped"
    assert first["items"][0]["fire_time"] == fire_times[0]
    bad = api.get("/api/v1/schedules/tick/runs?status=exploded", headers=READ)
    assert (bad.status_code, bad.json()["field"]) == (422, "status.0")
    assert api.get("/api/v1/schedules/no%20such/runs", headers=READ).status_code == 422
    assert api.get("/api/v1/schedules/never-existed/runs", headers=READ).json()["items"] == []


def test_postgres_stopped_then_back(api: TestClient, postgres_server: PostgresServer) -> None:
    assert api.get("/api/v1/tasks", headers=READ).status_code == 200
    postgres_server.stop()
    try:
        r = api.get("/api/v1/tasks?status=SUCCESS", headers=READ)
        assert (r.status_code, r.json()["error"], r.headers["Retry-After"]) == (503, "unavailable", "10")
        assert api.get("/readyz").json()["postgres"] == "down"
        submitted = api.post("/api/v1/tasks", json={"name": "add", "args": [1, 1]}, headers=SUBMIT)
        assert submitted.status_code == 201
    finally:
        postgres_server.start()
    # The pool replaces its broken connections: no restart of the API is needed.
    wait_until(lambda: api.get("/api/v1/tasks", headers=READ).status_code == 200, 30)
    assert api.get("/readyz").json() == {"status": "ok", "redis": "up", "postgres": "up"}
