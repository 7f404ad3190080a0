"""Task features through the real API (a real Redis, real worker processes): expiry, progress and the
duplicate lookup of a deduplicated enqueue."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until
from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.serialization import signature as signature_of
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(60)

KEYS = "admin-key:admin,submit-key:submit,read-key:read"
ADMIN = {"Authorization": "Bearer admin-key"}
SUBMIT = {"Authorization": "Bearer submit-key"}
READ = {"Authorization": "Bearer read-key"}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, ApiSettings(keys=SecretStr(KEYS)))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def task(api: TestClient, task_id: str) -> dict[str, Any]:
    r = api.get(f"/api/v1/tasks/{task_id}", headers=READ)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def submit(api: TestClient, **body: Any) -> str:
    r = api.post("/api/v1/tasks", json={"name": "record", **body}, headers=SUBMIT)
    assert r.status_code == 201, r.text
    task_id: str = r.json()["ids"][0]
    return task_id


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("2001-01-01T00:00:00Z", "is in the past"),
        (-3, "must be a number of seconds > 0"),
        (0, "must be a number of seconds > 0"),
        (True, "valid number"),
        ("soon", "valid number"),
        (1e300, "must be at most"),
        ("9999-12-31T23:59:59Z", "must be at most"),
    ],
)
def test_a_past_or_bad_expiry_is_a_422_naming_expires(api: TestClient, expires: Any, message: str) -> None:
    r = api.post("/api/v1/tasks", json={"name": "record", "expires": expires}, headers=SUBMIT)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"].split(".")[0] == "expires" and message in r.text, body
    batch = api.post(
        "/api/v1/tasks/batch",
        json={"tasks": [{"name": "a"}, {"name": "b", "expires": expires}]},
        headers=SUBMIT,
    )
    assert batch.status_code == 422 and "expires" in batch.json()["field"], batch.text


def test_an_expired_task_is_shown_expired(
    api: TestClient, client: Client, start_worker: Callable[..., Any]
) -> None:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)
    doomed = submit(api, expires=at.isoformat())
    kept = submit(api, expires=600)
    expires_at = task(api, doomed)["expires_at"]
    assert expires_at == pytest.approx(at.timestamp(), abs=0.002)
    wait_until(lambda: client.redis.time()[0] > expires_at + 1, timeout=10)
    start_worker("--pool", "thread", "--concurrency", "1")
    wait_until(lambda: task(api, kept)["status"] == "SUCCESS", timeout=30)
    body = task(api, doomed)
    assert (body["status"], body["attempts"], body["started_at"]) == ("EXPIRED", 0, None)
    r = api.get(f"/api/v1/tasks/{doomed}/result", headers=READ)
    assert r.status_code == 200 and r.json()["status"] == "EXPIRED"
    # Finished: the retry route re-submits it as a new task.
    retried = api.post(f"/api/v1/tasks/{doomed}/retry", headers=SUBMIT)
    assert retried.status_code == 200 and retried.json()["enqueue_ids"] == retried.json()["ids"]


def test_queue_expiry_is_configured_through_the_api(api: TestClient) -> None:
    r = api.put("/api/v1/queues/slow/expires", json={"expires": 90}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["expires"] == 90
    assert api.get("/api/v1/queues/slow/config", headers=READ).json()["expires"] == 90
    for bad in (0, -1, "x", True, 10**9):
        r = api.put("/api/v1/queues/slow/expires", json={"expires": bad}, headers=ADMIN)
        assert r.status_code == 422 and r.json()["field"] == "expires", r.text
    assert api.put("/api/v1/queues/slow/expires", json={"expires": 1}, headers=SUBMIT).status_code == 403
    r = api.put("/api/v1/queues/slow/expires", json={"expires": None}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["expires"] is None


def test_progress_is_on_the_task_detail_while_it_runs(
    api: TestClient, client: Client, start_worker: Callable[..., Any]
) -> None:
    start_worker("--pool", "process", "--concurrency", "1")
    r = api.post("/api/v1/tasks", json={"name": "report_progress", "args": [3, 10, 30]}, headers=SUBMIT)
    task_id = r.json()["ids"][0]
    # The tight loop wrote "step 1" at once and the rest within the throttle interval: "step 3" is the
    # value shown while the task still runs.
    wait_until(lambda: (task(api, task_id)["progress"] or {}).get("done") == 3, timeout=30)
    body = task(api, task_id)
    assert body["status"] == "RUNNING"
    progress = body["progress"]
    assert (progress["done"], progress["total"], progress["message"]) == (3, 10, "step 3")
    assert abs(progress["at"] - client.redis.time()[0]) < 30
    client.redis.rpush(f"{client.settings.key_prefix}:test:release:{task_id}", "go")
    wait_until(lambda: task(api, task_id)["status"] == "SUCCESS", timeout=30)
    assert task(api, task_id)["progress"]["done"] == 3


def test_a_deduplicated_enqueue_names_the_task_it_was_folded_into(api: TestClient, client: Client) -> None:
    body = {"name": "record", "args": [7], "unique": True, "countdown": 600}
    first = api.post("/api/v1/tasks", json=body, headers=SUBMIT).json()
    second = api.post("/api/v1/tasks", json=body, headers=SUBMIT).json()
    holder = first["ids"][0]
    assert (first["deduplicated"], first["enqueue_ids"]) == ([False], [holder])
    assert second["ids"] == [holder] and second["deduplicated"] == [True]
    folded = second["enqueue_ids"][0]
    assert folded != holder
    r = api.get(f"/api/v1/tasks/{folded}/duplicate", headers=READ)
    assert r.status_code == 200, r.text
    answer = r.json()
    signature = signature_of("record", [7], {})
    assert answer["duplicate"] is True
    assert (answer["duplicate_of"], answer["duplicate_of_status"], answer["signature"]) == (
        holder,
        "DELAYED",
        signature,
    )
    assert abs(answer["folded_at"] - client.redis.time()[0]) < 30
    # The folded id is no task of its own.
    assert api.get(f"/api/v1/tasks/{folded}", headers=READ).status_code == 404
    # The holder is not a duplicate; it carries the same signature.
    mine = api.get(f"/api/v1/tasks/{holder}/duplicate", headers=READ).json()
    assert (mine["duplicate"], mine["duplicate_of"], mine["signature"]) == (False, None, signature)


def test_an_explicit_unique_key_and_a_plain_task(api: TestClient) -> None:
    body = {"name": "record", "unique_key": "invoice-42 ✓", "countdown": 600}
    api.post("/api/v1/tasks", json=body, headers=SUBMIT)
    folded = api.post("/api/v1/tasks", json={**body, "args": [1]}, headers=SUBMIT).json()["enqueue_ids"][0]
    answer = api.get(f"/api/v1/tasks/{folded}/duplicate", headers=READ).json()
    assert answer["signature"] == hashlib.sha256("key:invoice-42 ✓".encode()).hexdigest()
    plain = submit(api)
    answer = api.get(f"/api/v1/tasks/{plain}/duplicate", headers=READ).json()
    assert (answer["duplicate"], answer["signature"]) == (False, None)


@pytest.mark.parametrize(
    ("task_id", "status"),
    [
        ("default." + "0" * 32, 404),  # well formed, unknown
        ("nosuchqueue." + "a" * 32, 404),
        ("default.xyz", 422),
        ("default." + "0" * 31 + "%00", 422),
        ("%ED%A0%80." + "0" * 32, 422),
    ],
)
def test_an_unknown_or_malformed_id_is_a_json_4xx(api: TestClient, task_id: str, status: int) -> None:
    r = api.get(f"/api/v1/tasks/{task_id}/duplicate", headers=READ)
    assert r.status_code == status, r.text
    assert "error" in r.json()


def test_the_duplicate_route_needs_the_read_scope(api: TestClient) -> None:
    assert api.get("/api/v1/tasks/default." + "0" * 32 + "/duplicate").status_code == 401
