"""Least privilege and browser-facing protections of the REST API (issue 15 #13, #14, #15).

Against a real Redis (and a real worker where a dead letter is needed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until
from pydantic import SecretStr

from jobqueue import Settings
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(60)

ADMIN = {"Authorization": "Bearer admin-key"}
SUBMIT = {"Authorization": "Bearer submit-key"}
READ = {"Authorization": "Bearer read-key"}
LOCAL = "http://127.0.0.1:8000"


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    keys = SecretStr("admin-key:admin,submit-key:submit,read-key:read")
    with TestClient(create_app(settings, ApiSettings(keys=keys)), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def open_api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, ApiSettings(open_mode=True, host="127.0.0.1"))
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as client:
        yield client


# --- 14: retrying a dead letter is a replay, which needs admin -------------------------------------


def test_retry_of_a_dead_letter_needs_the_admin_scope(
    api: TestClient, start_worker: Callable[..., Any]
) -> None:
    start_worker()
    [task_id] = api.post(
        "/api/v1/tasks", json={"name": "fail_with", "args": ["value"]}, headers=SUBMIT
    ).json()["ids"]
    wait_until(lambda: api.get("/api/v1/queues/default", headers=READ).json()["dead_letters"] == 1, 20)
    refused = api.post(f"/api/v1/tasks/{task_id}/retry", headers=SUBMIT)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden", refused.text
    assert api.get("/api/v1/queues/default", headers=READ).json()["dead_letters"] == 1
    replayed = api.post(f"/api/v1/tasks/{task_id}/retry", headers=ADMIN)
    assert replayed.status_code == 200 and replayed.json()["ids"] == [task_id], replayed.text


def test_retry_of_a_cancelled_task_still_needs_only_submit(api: TestClient) -> None:
    [task_id] = api.post("/api/v1/tasks", json={"name": "add", "countdown": 60}, headers=SUBMIT).json()["ids"]
    api.post(f"/api/v1/tasks/{task_id}/cancel", json={}, headers=SUBMIT)
    assert api.post(f"/api/v1/tasks/{task_id}/retry", headers=SUBMIT).status_code == 200


# --- 13: open mode on loopback: Host check (DNS rebinding) and cross-site writes ------------------


def test_open_mode_refuses_a_foreign_host_header(open_api: TestClient) -> None:
    # DNS rebinding: evil.example resolves to 127.0.0.1, and the browser sends its own name as Host.
    r = open_api.get("/api/v1/queues", headers={"Host": "evil.example"})
    assert r.status_code == 421 and r.json()["field"] == "host", r.text
    assert open_api.get("/api/v1/queues", headers={"Host": "evil.example:8000"}).status_code == 421
    assert open_api.get("/", headers={"Host": "evil.example"}).status_code == 421
    for host in ("127.0.0.1:8000", "localhost:8000", "localhost", "[::1]:8000"):
        assert open_api.get("/api/v1/queues", headers={"Host": host}).status_code == 200, host


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9999"},  # another local app is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_open_mode_refuses_cross_site_writes(open_api: TestClient, headers: dict[str, str]) -> None:
    r = open_api.post("/api/v1/queues/default/pause", headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "cross_site", r.text
    assert open_api.get("/api/v1/queues/default/config").json()["paused"] is False
    # Reading stays possible (the browser keeps a cross-site answer from the page).
    assert open_api.get("/api/v1/queues", headers=headers).status_code == 200


def test_open_mode_accepts_same_origin_and_non_browser_writes(open_api: TestClient) -> None:
    same = {"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"}
    assert open_api.post("/api/v1/queues/default/pause", headers=same).json()["paused"] is True
    assert open_api.post("/api/v1/queues/default/resume").json()["paused"] is False  # curl: no Origin


def test_allowed_hosts_setting(settings: Settings) -> None:
    api_settings = ApiSettings(keys=SecretStr("k:admin"), allowed_hosts="jobs.example.com")
    with TestClient(create_app(settings, api_settings), base_url="http://jobs.example.com") as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/queues", headers={"Host": "other.example"}).status_code == 421
        # The kubelet's probes name the pod's IP: they answer whatever the Host.
        assert client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200


# --- 15: no third-party scripts on the API's origin; a CSP on every answer -----------------------


def test_no_cdn_docs_pages_and_a_csp_everywhere(api: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        r = api.get(path)
        assert r.status_code == 404 and "cdn" not in r.text.lower(), path
    schema = api.get("/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "jobqueue"
    for r in (
        schema,
        api.get("/healthz"),
        api.get("/api/v1/queues"),
        api.get("/api/v1/queues", headers=READ),
    ):
        assert "default-src 'none'" in r.headers["content-security-policy"], r.url
        assert r.headers["x-content-type-options"] == "nosniff"
    page = api.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.split("<body")[0].replace("http-equiv", "")


def test_anonymous_write_is_refused_with_json_before_the_body_is_parsed(api: TestClient) -> None:
    r = api.post("/api/v1/tasks", content=b"not json at all")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert r.json()["message"] == "missing bearer API key"  # the UI shows it by the key box
    assert r.headers["www-authenticate"] == "Bearer"
    r = api.post("/api/v1/tasks", content=b"not json at all", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["message"] == "unknown API key"
