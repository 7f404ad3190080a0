"""The queue stats endpoint and how the web UI is served (against a real Redis and a real worker)."""

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
READ = {"Authorization": "Bearer read-key"}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, ApiSettings(keys=SecretStr("admin-key:admin,read-key:read,submit-key:submit")))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_queue_stats_counts_each_outcome(api: TestClient, start_worker: Callable[..., Any]) -> None:
    empty = api.get("/api/v1/queues/nothing-yet/stats", headers=READ)
    assert empty.status_code == 200
    assert set(empty.json()["counters"].values()) == {0}
    start_worker()
    tasks = [{"name": "add", "args": [1, 2]}] * 3 + [{"name": "fail_with", "args": ["value"]}]
    api.post("/api/v1/tasks/batch", json={"tasks": tasks}, headers=ADMIN)
    before = api.get("/api/v1/queues/default/stats", headers=READ).json()["at"]

    def counters() -> dict[str, int]:
        body = api.get("/api/v1/queues/default/stats", headers=READ).json()
        assert body["queue"] == "default" and body["at"] >= before
        return dict(body["counters"])

    wait_until(lambda: counters()["succeeded"] == 3 and counters()["dead_lettered"] == 1, 20)
    c = counters()
    assert (c["enqueued"], c["started"], c["retried"], c["cancelled"], c["lost_leases"]) == (4, 4, 0, 0, 0)


def test_queue_stats_needs_read_scope_and_a_valid_name(api: TestClient) -> None:
    assert api.get("/api/v1/queues/default/stats").status_code == 401
    assert (
        api.get("/api/v1/queues/default/stats", headers={"Authorization": "Bearer submit-key"}).status_code
        == 403
    )
    r = api.get("/api/v1/queues/bad%20name/stats", headers=READ)
    assert r.status_code == 422 and r.json()["field"] == "queue"


def test_ui_is_served_without_shadowing_the_api(api: TestClient) -> None:
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/js/main.js">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = api.get("/ui/js/main.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    assert api.get("/ui/ui.css").headers["content-type"].startswith("text/css")
    # Every module main.js imports is shipped (a missing one would blank the page).
    for module in (
        "api",
        "dom",
        "charts",
        "overview",
        "queue",
        "tasks",
        "task_detail",
        "dead_letters",
        "workers",
    ):
        assert api.get(f"/ui/js/{module}.js").status_code == 200, module
    assert api.get("/ui/../settings.py").status_code == 404
    # The API, its schema and the probes still answer as before (no /docs: it would load a CDN's scripts).
    assert api.get("/api/v1/queues", headers=READ).status_code == 200
    missing = api.get("/api/v1/nothing-here", headers=READ)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"
    assert api.get("/openapi.json").status_code == 200
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").status_code == 200
    assert api.get("/metrics").status_code == 200
