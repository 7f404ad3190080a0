"""The REST API against a real Redis server and a real worker process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until
from pydantic import SecretStr

from jobqueue import ConfigurationError, Settings
from jobqueue.embedded.redis_server import free_port
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(60)

KEYS = "admin-key:admin,submit-key:submit,read-key:read"
ADMIN = {"Authorization": "Bearer admin-key"}
SUBMIT = {"Authorization": "Bearer submit-key"}
READ = {"Authorization": "Bearer read-key"}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, ApiSettings(keys=SecretStr(KEYS), max_body_bytes=10_000))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_submit_get_and_result(api: TestClient, start_worker: Callable[..., Any]) -> None:
    start_worker()
    r = api.post("/api/v1/tasks", json={"name": "add", "args": [2, 3], "priority": "high"}, headers=SUBMIT)
    assert r.status_code == 201, r.text
    [task_id] = r.json()["ids"]
    wait_until(lambda: api.get(f"/api/v1/tasks/{task_id}", headers=READ).json()["status"] == "SUCCESS", 20)
    body = api.get(f"/api/v1/tasks/{task_id}", headers=READ).json()
    assert (body["result"], body["priority"], body["attempts"]) == (5, "high", 1)
    result = api.get(f"/api/v1/tasks/{task_id}/result", headers=READ).json()
    assert result["result"] == 5 and 0 < result["ttl_seconds"] <= 86_400
    assert (
        api.put(f"/api/v1/tasks/{task_id}/result/ttl", json={"ttl_seconds": 10}, headers=ADMIN).status_code
        == 200
    )
    assert api.get(f"/api/v1/tasks/{task_id}/result", headers=READ).json()["ttl_seconds"] <= 10
    assert api.delete(f"/api/v1/tasks/{task_id}/result", headers=ADMIN).status_code == 204
    assert api.get(f"/api/v1/tasks/{task_id}", headers=READ).status_code == 404


def test_batch_cancel_and_queue_depth(api: TestClient) -> None:
    tasks = [{"name": "add", "args": [i, i], "countdown": 60} for i in range(3)]
    r = api.post("/api/v1/tasks/batch", json={"tasks": tasks}, headers=SUBMIT)
    assert r.status_code == 201
    ids = r.json()["ids"]
    assert api.get("/api/v1/queues/default", headers=READ).json()["delayed"] == 3
    r = api.post(f"/api/v1/tasks/{ids[0]}/cancel", json={"reason": "other"}, headers=SUBMIT)
    assert r.json() == {"id": ids[0], "outcome": "cancelled"}
    queues = api.get("/api/v1/queues", headers=READ).json()
    assert [q["name"] for q in queues] == ["default"] and queues[0]["delayed"] == 2


def test_dead_letters_replay_and_purge(api: TestClient, start_worker: Callable[..., Any]) -> None:
    start_worker()
    ids = api.post(
        "/api/v1/tasks/batch", json={"tasks": [{"name": "fail_with", "args": ["value"]}] * 2}, headers=SUBMIT
    ).json()["ids"]
    wait_until(lambda: api.get("/api/v1/queues/default", headers=READ).json()["dead_letters"] == 2, 20)
    listed = api.get("/api/v1/queues/default/dead-letters?limit=1", headers=READ).json()
    assert len(listed) == 1 and listed[0]["dead_letter_reason"] == "not_retryable"
    stats = api.get("/api/v1/queues/default/dead-letters/stats?alert_threshold=2", headers=READ).json()
    assert stats["total"] == 2 and stats["alert"] is True and stats["by_task"] == {"fail_with": 2}
    r = api.post(f"/api/v1/queues/default/dead-letters/{ids[0]}/replay", json={}, headers=ADMIN)
    assert r.status_code == 200
    wait_until(lambda: api.get("/api/v1/queues/default", headers=READ).json()["dead_letters"] == 2, 20)
    assert api.delete("/api/v1/queues/default/dead-letters", headers=ADMIN).json() == {"purged": 2}


def test_workers_listed_with_current_tasks(api: TestClient, start_worker: Callable[..., Any]) -> None:
    start_worker("--worker-id", "pod-1")
    wait_until(lambda: any(w["id"] == "pod-1" for w in api.get("/api/v1/workers", headers=READ).json()), 20)
    w = api.get("/api/v1/workers/pod-1", headers=READ).json()
    assert w["status"] in ("IDLE", "ACTIVE") and w["queues"] == ["default"] and w["concurrency"] == 4
    stats = api.get("/api/v1/workers/stats", headers=READ).json()
    assert stats["slots"] == 4
    assert api.get("/api/v1/workers/nope", headers=READ).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "add", "priority": "urgent"}, "priority"),
        ({"name": "add", "countdown": -1}, "countdown"),
        ({"name": "", "args": []}, "name"),
        ({"name": "add", "args": "nope"}, "args"),
        ({"name": "add", "queue": "bad queue"}, "queue"),
        ({"name": "add", "timeout": 5, "soft_timeout": 9}, "soft_timeout"),
        ({"name": "add", "surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(api: TestClient, body: dict[str, Any], field: str) -> None:
    r = api.post("/api/v1/tasks", json=body, headers=SUBMIT)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_malformed_requests(api: TestClient) -> None:
    r = api.post(
        "/api/v1/tasks", content=b"{not json", headers={**SUBMIT, "content-type": "application/json"}
    )
    assert r.status_code == 422 and "error" in r.json()
    r = api.post("/api/v1/tasks", json={"name": "add", "args": ["x" * 20_000]}, headers=SUBMIT)
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert api.get("/api/v1/tasks/not-an-id", headers=READ).status_code == 422
    assert api.get("/api/v1/tasks/default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f", headers=READ).status_code == 404
    assert api.get("/api/v1/nothing-here", headers=READ).status_code == 404


def test_missing_body_names_the_body(api: TestClient) -> None:
    # Found by the schemathesis fuzzer: a POST without a body was a 422 naming no field.
    r = api.post("/api/v1/tasks", headers=SUBMIT)
    assert r.status_code == 422 and r.json()["field"] == "body", r.text
    r = api.put("/api/v1/queues/default/rate-limit", headers=ADMIN)
    assert r.status_code == 422 and r.json()["field"] == "body", r.text


def test_body_that_is_not_utf8_is_a_422_naming_the_body(api: TestClient) -> None:
    # Found by the schemathesis fuzzer: body b"\x80" was a 400 naming no field.
    headers = {**SUBMIT, "content-type": "application/json"}
    r = api.post("/api/v1/tasks", content=b"\x80", headers=headers)
    assert r.status_code == 422 and r.json()["field"] == "body", r.text


def test_json_syntax_error_names_the_body_not_an_offset(api: TestClient) -> None:
    # Found by the schemathesis fuzzer: body b"\x00" was a 422 naming field "0" (the error's offset).
    headers = {**SUBMIT, "content-type": "application/json"}
    for content in (b"\x00", b'{"name": "add",,}'):
        r = api.post("/api/v1/tasks", content=content, headers=headers)
        assert r.status_code == 422 and r.json()["field"] == "body", r.text


def test_chunked_body_is_refused_while_it_streams(api: TestClient) -> None:
    # The body limit used to read a body without Content-Length whole before checking it: an endless
    # chunked upload was held in memory until the client stopped. Now it stops reading past the limit.
    chunks_read = 0

    async def endless_body() -> dict[str, Any]:
        nonlocal chunks_read
        chunks_read += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/tasks",
        "raw_path": b"/api/v1/tasks",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", b"Bearer submit-key"), (b"content-type", b"application/json")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }
    asyncio.run(asyncio.wait_for(api.app(scope, endless_body, send), timeout=10))
    assert sent[0]["status"] == 413 and chunks_read == 11  # max_body_bytes=10_000
    assert json.loads(sent[1]["body"])["field"] == "body"
    # A chunked body within the limit still goes through.
    headers = {**SUBMIT, "content-type": "application/json"}
    r = api.post("/api/v1/tasks", content=iter([b'{"name": ', b'"add"}']), headers=headers)
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/tasks", content=iter([b"x" * 6000, b"x" * 6000]), headers=headers)
    assert r.status_code == 413 and r.json()["field"] == "body", r.text


def test_rate_limit_period_too_small_names_period_seconds(api: TestClient) -> None:
    # Probing past the fuzzer: period_seconds=5e-324 was a 422 naming "period", which no request has.
    r = api.put(
        "/api/v1/queues/default/rate-limit", json={"limit": 1, "period_seconds": 5e-324}, headers=ADMIN
    )
    assert r.status_code == 422 and r.json()["field"] == "period_seconds", r.text


def test_schedule_name_outside_the_registry_rule_is_a_422(api: TestClient) -> None:
    # Probing past the fuzzer: the name path parameter took any 1-200 characters (GET /schedules/%00 was a
    # 404) while the registry only accepts 1-128 of [A-Za-z0-9_.-].
    for path in ("/api/v1/schedules/%00", "/api/v1/schedules/" + "a" * 129, "/api/v1/schedules/a%20b/pause"):
        method = api.post if path.endswith("/pause") else api.get
        r = method(path, headers=ADMIN)
        assert r.status_code == 422 and r.json()["field"] == "name", (path, r.text)
    assert api.get("/api/v1/schedules/nightly.v2-x_1", headers=ADMIN).status_code == 404


def test_retry_answers_one_deduplicated_flag_per_id(api: TestClient) -> None:
    # Probing past the fuzzer: retry answered {"ids": [new], "deduplicated": []}, one list shorter.
    [task_id] = api.post("/api/v1/tasks", json={"name": "add", "countdown": 60}, headers=SUBMIT).json()["ids"]
    assert api.post(f"/api/v1/tasks/{task_id}/cancel", json={}, headers=SUBMIT).status_code == 200
    body = api.post(f"/api/v1/tasks/{task_id}/retry", headers=SUBMIT).json()
    assert len(body["ids"]) == len(body["deduplicated"]) == 1 and body["ids"][0] != task_id, body


def test_keys_and_scopes(api: TestClient) -> None:
    assert api.get("/api/v1/queues").status_code == 401
    assert api.get("/api/v1/queues", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.post("/api/v1/tasks", json={"name": "add"}, headers=READ).status_code == 403
    assert api.get("/api/v1/queues", headers=SUBMIT).status_code == 403
    assert api.delete("/api/v1/queues/default/dead-letters", headers=SUBMIT).status_code == 403
    assert api.get("/api/v1/queues", headers=ADMIN).status_code == 200
    assert api.get("/healthz").status_code == 200


def test_open_mode_only_on_loopback(settings: Settings) -> None:
    with pytest.raises(ConfigurationError):
        create_app(settings, ApiSettings(open_mode=True, host="0.0.0.0"))
    with pytest.raises(ConfigurationError):
        create_app(settings, ApiSettings())  # neither keys nor open mode
    app = create_app(settings, ApiSettings(open_mode=True, host="127.0.0.1"))
    # An open API answers only to loopback Host names (test_security.py), not TestClient's "testserver".
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/v1/queues").status_code == 200


def test_metrics_and_readiness(api: TestClient) -> None:
    api.post("/api/v1/tasks", json={"name": "add", "args": [1, 1]}, headers=SUBMIT)
    text = api.get("/metrics").text
    assert 'jobqueue_queue_depth{priority="medium",queue="default"} 1.0' in text
    assert 'jobqueue_tasks_enqueued_total{queue="default"} 1.0' in text
    assert api.get("/readyz").json() == {"status": "ok", "redis": "up", "postgres": "not_configured"}


def test_redis_down_is_a_503_with_retry_after(settings: Settings) -> None:
    down = settings.model_copy(update={"redis_url": SecretStr(f"redis://127.0.0.1:{free_port()}/0")})
    app = create_app(down, ApiSettings(keys=SecretStr(KEYS)))
    with TestClient(app) as client:
        r = client.post("/api/v1/tasks", json={"name": "add"}, headers=SUBMIT)
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert client.get("/readyz").status_code == 503


def test_submit_unique_and_depends_on(api: TestClient, start_worker: Callable[..., Any]) -> None:
    body = {"name": "add", "args": [1, 1], "unique": True, "countdown": 30}
    first = api.post("/api/v1/tasks", json=body, headers=SUBMIT).json()
    again = api.post("/api/v1/tasks", json=body, headers=SUBMIT).json()
    assert again["ids"] == first["ids"] and again["deduplicated"] == [True]
    start_worker()
    parent = api.post("/api/v1/tasks", json={"name": "add", "args": [1, 2]}, headers=SUBMIT).json()["ids"][0]
    child = api.post(
        "/api/v1/tasks", json={"name": "add", "args": [3, 4], "depends_on": [parent]}, headers=SUBMIT
    ).json()["ids"][0]
    wait_until(lambda: api.get(f"/api/v1/tasks/{child}", headers=READ).json()["status"] == "SUCCESS", 20)
    assert api.get(f"/api/v1/tasks/{child}", headers=READ).json()["parents"] == [parent]
    r = api.post(
        "/api/v1/tasks",
        json={"name": "add", "depends_on": ["default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f"]},
        headers=SUBMIT,
    )
    assert r.status_code == 422 and r.json()["field"] == "depends_on"
