"""Issue 15 through the REST API on a real Redis and a real worker: unstorable input is a 422 naming the
path inside the payload and writes nothing; unstorable output is stored escaped; oversized output fails
the attempt. Bodies are sent as ASCII JSON text so lone surrogates reach the server as JSON escapes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until
from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.keys import GlobalKeys
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(90)

HEADERS = {"Authorization": "Bearer k", "content-type": "application/json"}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, ApiSettings(keys=SecretStr("k:admin"), max_body_bytes=100_000))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def post(api: TestClient, path: str, body: object) -> Any:
    return api.post(path, content=json.dumps(body).encode(), headers=HEADERS)


def task(api: TestClient, task_id: str) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/api/v1/tasks/{task_id}", headers=HEADERS).json()
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "args": ["a\x00b"]}, "args[0]"),  # defect 1
        ({"name": "add", "args": ["\ud800"]}, "args[0]"),  # defect 4
        ({"name": "add", "kwargs": {"k\udc80": 1}}, "kwargs"),  # defect 4: a key
        ({"name": "add", "kwargs": {"deep": {"er": ["\x00"]}}}, "kwargs.deep.er[0]"),
        ({"name": "add\x00"}, "name"),
        ({"name": "add", "args": ["secret"], "queue": "schedules"}, "queue"),  # defect 5
        ({"name": "add", "countdown": "10"}, "countdown"),  # defect 18
        ({"name": "add", "max_retries": True}, "max_retries"),
        ({"name": "add", "unique": "yes"}, "unique"),
        ({"name": "add", "eta": "9999-12-31T00:00:00Z"}, "eta"),
    ],
)
def test_unstorable_or_lax_input_is_a_422_naming_the_path(
    api: TestClient, client: Client, body: dict[str, Any], field: str
) -> None:
    r = post(api, "/api/v1/tasks", body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert client.known_queues() == []  # nothing registered, nothing written


def test_a_batch_error_names_the_task_and_writes_nothing(api: TestClient, client: Client) -> None:
    tasks: list[dict[str, Any]] = [{"name": "add", "args": [1, 2], "queue": "q1"}] * 2
    bad = {"name": "add", "args": ["\ud800"], "queue": "q2"}
    r = post(api, "/api/v1/tasks/batch", {"tasks": [*tasks, bad]})
    assert r.status_code == 422 and r.json()["field"] == "tasks[2].args[0]", r.text
    # defect 6: a later task's unknown parent used to leave the earlier tasks written (and run)
    unknown = "q1.0190a1b2c3d47e8f9a0b1c2d3e4f5a6b"
    r = post(api, "/api/v1/tasks/batch", {"tasks": [*tasks, {"name": "add", "depends_on": [unknown]}]})
    assert r.status_code == 422 and r.json()["field"] == "tasks[2].depends_on", r.text
    assert client.known_queues() == []
    assert client.queue_depth("q1").ready == {"high": 0, "medium": 0, "low": 0}


def test_a_schedule_with_a_lone_surrogate_is_refused_and_not_stored(api: TestClient, client: Client) -> None:
    body = {"name": "s", "cron": "* * * * * *", "task": "x", "args": ["\ud800"]}
    r = post(api, "/api/v1/schedules", body)
    assert r.status_code == 422 and r.json()["field"] == "args[0]", r.text
    assert api.get("/api/v1/schedules", headers=HEADERS).json() == []
    r = post(api, "/api/v1/schedules", {"name": "s", "cron": "* * * * *", "task": "x", "timezone": "America"})
    assert r.status_code == 422 and r.json()["field"] == "timezone", r.text  # defect 10


def test_an_old_bad_schedule_breaks_neither_listing_nor_scheduler(api: TestClient, client: Client) -> None:
    from jobqueue.schedules.registry import fire_due_schedules  # noqa: PLC0415 - only this test

    good = {"name": "ok", "cron": "* * * * * *", "task": "x"}
    assert post(api, "/api/v1/schedules", good).status_code == 201
    keys = GlobalKeys(client.settings.key_prefix)
    # As an earlier version stored it: the JSON escape of a lone surrogate.
    stored = '{"name":"bad","cron":"* * * * * *","task":"x","args":["\\ud800"]}'
    client.redis.hset(keys.schedules, "bad", stored)
    client.redis.zadd(keys.schedules_due, {"bad": 0})
    r = api.get("/api/v1/schedules", headers=HEADERS)
    assert r.status_code == 200 and [s["name"] for s in r.json()] == ["ok"]
    wait_until(lambda: fire_due_schedules(client, "test").fired >= 1, 5)


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_unstorable_output_is_stored_escaped(
    api: TestClient, client: Client, start_worker: Callable[..., Any], pool: str
) -> None:
    start_worker("--pool", pool)
    ok = post(api, "/api/v1/tasks", {"name": "unstorable_output", "args": ["return"]}).json()["ids"][0]
    raised = post(api, "/api/v1/tasks", {"name": "unstorable_output", "args": ["raise"], "max_retries": 0})
    bad = raised.json()["ids"][0]
    after = post(api, "/api/v1/tasks", {"name": "add", "args": [1, 2]}).json()["ids"][0]
    # defect 2: the acker used to die here, so `after` stayed RUNNING for ever
    wait_until(lambda: task(api, after)["status"] == "SUCCESS", 20)
    escaped = "bad \\udc80 byte, nul \\u0000"
    assert task(api, ok)["result"] == {escaped: [escaped]}
    assert task(api, bad)["status"] == "FAILED"
    assert task(api, bad)["error"] == f"ValueError: {escaped}"


def test_a_result_over_the_limit_fails_the_attempt(
    api: TestClient, settings: Settings, start_worker: Callable[..., Any]
) -> None:
    start_worker(worker_settings=settings.model_copy(update={"max_result_bytes": 10_000}))
    task_id = post(api, "/api/v1/tasks", {"name": "big_result", "args": [20_000]}).json()["ids"][0]
    wait_until(lambda: task(api, task_id)["status"] == "FAILED", 20)
    body = task(api, task_id)
    assert body["result"] is None
    assert body["error"].startswith("ResultTooLarge: the task's result is 20002 bytes")


def test_a_task_stored_by_an_earlier_version_still_reads(api: TestClient, client: Client) -> None:
    handle = client.enqueue("add", ["placeholder"])
    client.redis.hset(client.queue_keys("default").task(handle.id), "args", '["\\ud800"]')
    r = api.get(f"/api/v1/tasks/{handle.id}", headers=HEADERS)
    assert r.status_code == 200, r.text
    assert r.json()["args"] == ["\ud800"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cron": "* * * * \ud800"}, "cron"),  # croniter's error quoted it: the 422 itself failed (500)
        ({"timezone": "\ud800"}, "timezone"),
        ({"timezone": "Etc"}, "timezone"),
        ({"task": "x\x00"}, "task"),
        ({"kwargs": {"k": {"\x00": 1}}}, "kwargs.k"),
        ({"starting_deadline_seconds": "5"}, "starting_deadline_seconds"),
    ],
)
def test_bad_schedules_are_a_422_naming_the_field(
    api: TestClient, change: dict[str, Any], field: str
) -> None:
    r = post(api, "/api/v1/schedules", {"name": "s", "cron": "* * * * *", "task": "x", **change})
    assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert api.get("/api/v1/schedules", headers=HEADERS).json() == []


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/v1/queues/q/retry-defaults",
            {"max_retries": 3, "base_seconds": 60, "max_seconds": 10},
            "base_seconds",
        ),
        ("/api/v1/queues/q/retry-defaults", {"max_retries": "3"}, "max_retries"),
        ("/api/v1/queues/q/rate-limit", {"limit": True, "period_seconds": 1}, "limit"),
        ("/api/v1/queues/q/max-in-flight", {"max_in_flight": "5"}, "max_in_flight"),
    ],
)
def test_lax_queue_settings_are_refused(api: TestClient, path: str, body: dict[str, Any], field: str) -> None:
    r = api.put(path, content=json.dumps(body).encode(), headers=HEADERS)
    assert r.status_code == 422 and r.json()["field"] == field, r.text
