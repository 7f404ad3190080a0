"""/api/v1/worker-pools on the local backend, against a real Redis server: the specs the API writes are the
ones the local supervisor reads (tests/integration/jobqueue/test_pool_fleet.py runs them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from payload_strategies import PROFILE, json_values
from pydantic import SecretStr

from jobqueue import Settings
from jobqueue.broker.client import Client
from jobqueue.broker.worker_pools import MAX_EVENTS, PoolStore
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(60)
ADMIN = {"Authorization": "Bearer a"}
READ = {"Authorization": "Bearer r"}
BASE = "/api/v1/worker-pools"
POOL = {"name": "emails", "queues": ["emails", "default"], "concurrency": 2, "replicas": 1}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, ApiSettings(keys=SecretStr("a:admin,r:read"), pools_backend="local"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def create(api: TestClient, **changes: Any) -> Any:
    r = api.post(BASE, json={**POOL, **changes}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return r.json()


def test_lifecycle(api: TestClient, client: Client) -> None:
    assert api.get(BASE, headers=READ).json() == {"backend": "local", "pools": []}
    client.enqueue("add", [1, 2], queue="emails")
    pool = create(api)
    assert (pool["name"], pool["queues"], pool["generation"]) == ("emails", ["emails", "default"], 1)
    assert pool["status"]["desired_replicas"] == 1 and pool["status"]["queue_ready"] == 1
    listed = api.get(BASE, headers=READ).json()["pools"]
    assert [p["name"] for p in listed] == ["emails"]
    # The store the supervisor reads holds exactly what the API answered.
    stored = PoolStore(client).get("emails").to_dict()
    assert stored == {k: pool[k] for k in pool if k not in ("backend", "status")}

    r = api.patch(f"{BASE}/emails", json={"concurrency": 8, "queues": ["emails"]}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (r.json()["concurrency"], r.json()["queues"], r.json()["generation"]) == (8, ["emails"], 2)

    auto = {"enabled": True, "min_replicas": 1, "max_replicas": 6, "target_tasks_per_replica": 20}
    r = api.put(f"{BASE}/emails/autoscaling", json=auto, headers=ADMIN)
    assert r.status_code == 200 and r.json()["autoscaling"] == auto
    assert r.json()["status"]["desired_replicas"] is None  # the autoscaler decides

    # The documented rule: a manual scale while autoscaling is on turns it off.
    r = api.post(f"{BASE}/emails/scale", json={"replicas": 3}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["replicas"] == 3 and r.json()["autoscaling"] == {**auto, "enabled": False}
    assert r.json()["status"]["desired_replicas"] == 3

    kinds = [e["kind"] for e in api.get(f"{BASE}/emails/events", headers=READ).json()["events"]]
    assert kinds == ["Scaled", "AutoscalingChanged", "Updated", "Created"]

    assert api.delete(f"{BASE}/emails", headers=ADMIN).status_code == 204
    assert api.get(f"{BASE}/emails", headers=READ).status_code == 404
    # The history outlives the pool (for a while), so the drain can still be explained.
    assert api.get(f"{BASE}/emails/events", headers=READ).json()["events"][0]["kind"] == "Deleting"
    assert api.get(BASE, headers=READ).json()["pools"] == []


def test_name_taken_is_409_and_the_first_pool_is_untouched(api: TestClient, client: Client) -> None:
    create(api)
    r = api.post(BASE, json={**POOL, "concurrency": 50}, headers=ADMIN)
    assert r.status_code == 409 and r.json()["field"] == "name"
    assert PoolStore(client).get("emails").concurrency == 2
    assert len(PoolStore(client).events("emails")) == 1


def test_unknown_pool_is_404_everywhere(api: TestClient) -> None:
    for method, path, body in [
        ("GET", "/nope", None),
        ("PATCH", "/nope", {"concurrency": 2}),
        ("DELETE", "/nope", None),
        ("POST", "/nope/scale", {"replicas": 1}),
        ("PUT", "/nope/autoscaling", {"enabled": False}),
        ("GET", "/nope/events", None),
    ]:
        r = api.request(method, BASE + path, json=body, headers=ADMIN)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["field"] == "name"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**POOL, "concurrency": 0}, "concurrency"),
        ({**POOL, "concurrency": "2"}, "concurrency"),
        ({**POOL, "concurrency": 10**40}, "concurrency"),
        ({**POOL, "replicas": True}, "replicas"),
        ({**POOL, "name": "Emails"}, "name"),
        ({**POOL, "name": "a\x00"}, "name"),
        ({**POOL, "queues": ["bad queue"]}, "queues.0"),
        ({**POOL, "queues": []}, "queues"),
        ({**POOL, "queues": ["a", "a"]}, "queues"),
        ({**POOL, "queues": ["schedules"]}, "queues.0"),
        ({**POOL, "surprise": 1}, "surprise"),
        ({**POOL, "autoscaling": {"enabled": True, "min_replicas": 5, "max_replicas": 2}},
         "autoscaling.min_replicas"),
        ({k: v for k, v in POOL.items() if k != "queues"}, "queues"),
    ],
)  # fmt: skip
def test_bad_bodies_are_422_naming_the_field_and_create_nothing(
    api: TestClient, client: Client, body: dict[str, Any], field: str
) -> None:
    r = api.post(BASE, json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert PoolStore(client).all() == []


def test_deep_nesting_and_bad_json_are_422(api: TestClient) -> None:
    json_body = {**ADMIN, "Content-Type": "application/json"}
    deep = b'{"name": "x", "queues": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    r = api.post(BASE, content=deep, headers=json_body)
    assert r.status_code == 422 and r.json()["field"] in ("body", "queues")  # never a 500
    # Lone surrogates arrive as JSON escapes (a client cannot encode them as UTF-8).
    r = api.post(BASE, content=b'{"name": "x", "queues": ["\\ud800"]}', headers=json_body)
    assert r.status_code == 422 and r.json()["field"] == "queues.0"
    r = api.post(BASE, content=b'{"name": "\\udcff", "queues": ["q"]}', headers=json_body)
    assert r.status_code == 422 and r.json()["field"] == "name"


def test_bad_changes_are_422_and_leave_the_pool_alone(api: TestClient, client: Client) -> None:
    create(api)
    bad = api.put(f"{BASE}/emails/autoscaling", json={"enabled": True, "min_replicas": 4, "max_replicas": 3},
                  headers=ADMIN)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["field"] == "min_replicas"
    bad = api.post(f"{BASE}/emails/scale", json={"replicas": -1}, headers=ADMIN)
    assert bad.json()["field"] == "replicas"
    assert api.post(f"{BASE}/emails/scale", json={"replicas": 1001}, headers=ADMIN).status_code == 422
    assert api.patch(f"{BASE}/emails", json={"queues": ["x y"]}, headers=ADMIN).json()["field"] == "queues.0"
    assert api.get(f"{BASE}/BAD", headers=ADMIN).status_code == 422
    assert PoolStore(client).get("emails").generation == 1
    assert len(PoolStore(client).events("emails")) == 1


def test_read_scope_looks_but_cannot_change(api: TestClient, client: Client) -> None:
    create(api)
    assert api.get(BASE, headers=READ).status_code == 200
    assert api.get(f"{BASE}/emails/events", headers=READ).status_code == 200
    for method, path, body in [
        ("POST", "", {**POOL, "name": "other"}),
        ("POST", "", {"bad": "body"}),  # 403 before the body is judged
        ("PATCH", "/emails", {"concurrency": 3}),
        ("DELETE", "/emails", None),
        ("POST", "/emails/scale", {"replicas": 4}),
        ("PUT", "/emails/autoscaling", {"enabled": True}),
    ]:
        r = api.request(method, BASE + path, json=body, headers=READ)
        assert r.status_code == 403, (method, path, r.text)
    assert [p.name for p in PoolStore(client).all()] == ["emails"]
    assert PoolStore(client).get("emails").generation == 1
    assert api.get(BASE).status_code == 401


def test_events_are_bounded(api: TestClient, client: Client) -> None:
    create(api)
    for i in range(MAX_EVENTS + 5):
        PoolStore(client).record_event("emails", "ScaledUp", f"step {i}")
    events = api.get(f"{BASE}/emails/events", headers=READ).json()["events"]
    assert len(events) == MAX_EVENTS and events[0]["message"] == f"step {MAX_EVENTS + 4}"


def test_without_a_backend_pool_routes_say_how_to_configure_one(settings: Settings) -> None:
    app = create_app(settings, ApiSettings(keys=SecretStr("a:admin")))
    with TestClient(app, raise_server_exceptions=False) as api:
        r = api.get(BASE, headers=ADMIN)
        assert r.status_code == 409 and "JOBQUEUE_API_POOLS_BACKEND" in r.json()["message"]
        assert api.post(BASE, json=POOL, headers=ADMIN).status_code == 409


def test_cluster_only_fields_are_refused_locally(api: TestClient, client: Client) -> None:
    r = api.post(BASE, json={**POOL, "image": "me/worker:1"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["field"] == "image", r.text
    r = api.post(BASE, json={**POOL, "processes": 2}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["field"] == "processes", r.text
    assert PoolStore(client).all() == []


def test_generated_hostile_bodies_are_created_exactly_or_refused_naming_a_field(
    api: TestClient, client: Client
) -> None:
    """Any field replaced by arbitrary JSON (NUL, lone surrogates, huge numbers, nesting): a 201 whose
    stored spec is what was asked, or a 422 with a field and nothing stored; never a 500."""
    store = PoolStore(client)
    json_body = {**ADMIN, "Content-Type": "application/json"}

    @PROFILE
    @given(st.sampled_from([*POOL, "autoscaling"]), json_values())
    def check(field: str, value: Any) -> None:
        body = {**POOL, field: value}
        r = api.post(BASE, content=json.dumps(body).encode(), headers=json_body)
        assert r.status_code in (201, 422), r.text
        if r.status_code == 422:
            assert r.json()["field"], r.text
            assert store.all() == []
            return
        stored = store.get("emails").to_dict()
        assert {k: stored[k] for k in ("queues", "concurrency", "replicas")} == {
            k: body[k] for k in ("queues", "concurrency", "replicas")
        }
        assert api.delete(f"{BASE}/emails", headers=ADMIN).status_code == 204

    check()
