"""The API's structured access log, from a real ``jobqueue api`` process whose stderr is a file (not a
terminal: JSON by default), read line by line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jq_testing import wait_until, worker_env

from jobqueue import Settings
from jobqueue.embedded.redis_server import free_port

pytestmark = pytest.mark.timeout(90)

ADMIN_KEY = "admin-secret-key-1"
READ_KEY = "read-secret-key-2"


class Api:
    def __init__(self, port: int, log: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = log

    def call(self, method: str, path: str, key: str | None = None, body: Any = None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def lines(self) -> list[dict[str, Any]]:
        """Every line the process wrote, each parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == "jobqueue_api.access"]


def start_api(settings: Settings, tmp_path: Path, *args: str, **env_extra: str) -> Iterator[Api]:
    port = free_port()
    env = {
        **os.environ,
        **worker_env(settings),
        "JOBQUEUE_API_KEYS": f"{ADMIN_KEY}:admin,{READ_KEY}:read",
        **env_extra,
    }
    env.pop("JOBQUEUE_DATABASE_URL", None)
    log = tmp_path / "api.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobqueue", *args, "api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    api = Api(port, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                with urllib.request.urlopen(f"{api.base}/healthz", timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.1)
        yield api
    finally:
        process.terminate()
        process.wait(15)


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[Api]:
    yield from start_api(settings, tmp_path)


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def test_each_request_is_one_json_line_with_its_route_template_status_and_key_id(api: Api) -> None:
    missing = "default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f"
    assert api.call("POST", "/api/v1/tasks", ADMIN_KEY, {"name": "add", "args": [1, 2]}) == 201
    assert api.call("GET", f"/api/v1/tasks/{missing}", READ_KEY) == 404
    assert api.call("POST", "/api/v1/tasks", ADMIN_KEY, {"name": "add", "args": "not a list"}) == 422
    assert api.call("GET", "/api/v1/no-such-route?token=abc", ADMIN_KEY) == 404
    assert api.call("GET", f"/api/v1/tasks/{missing}") == 401
    assert api.call("GET", f"/api/v1/tasks/{missing}", "guessed-key") == 401
    wait_until(lambda: len(api.access()) >= 6, timeout=10)

    lines = api.access()
    assert [(x["method"], x["route"], x["status"], x["key_id"]) for x in lines] == [
        ("POST", "/api/v1/tasks", 201, fingerprint(ADMIN_KEY)),
        ("GET", "/api/v1/tasks/{task_id}", 404, fingerprint(READ_KEY)),
        ("POST", "/api/v1/tasks", 422, fingerprint(ADMIN_KEY)),
        ("GET", None, 404, fingerprint(ADMIN_KEY)),
        ("GET", "/api/v1/tasks/{task_id}", 401, ""),
        ("GET", "/api/v1/tasks/{task_id}", 401, "unknown"),
    ]
    for line in lines:
        assert line["event"] == "http_request" and line["level"] == "INFO"
        assert line["client"] == "127.0.0.1"
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    # No task id from the URL where a template exists; the path (no query string) where none matched.
    assert "path" not in lines[1] and missing not in json.dumps(lines[1])
    assert lines[3]["path"] == "/api/v1/no-such-route"
    assert lines[0]["message"].startswith("POST /api/v1/tasks 201 ")

    text = api.log.read_text()
    for secret in (ADMIN_KEY, READ_KEY, "guessed-key", "token=abc"):
        assert secret not in text
    # The probes the test itself polled are not at INFO; uvicorn's own lines are JSON too (lines() parsed
    # them all), and uvicorn's access log is off: no line from it.
    assert not [x for x in lines if x.get("path") == "/healthz" or x["route"] == "/healthz"]
    assert not [x for x in api.lines() if x["logger"] == "uvicorn.access"]
    assert any(x["logger"].startswith("uvicorn") for x in api.lines())


def test_the_access_log_can_be_turned_off_and_text_is_one_switch_away(
    settings: Settings, tmp_path: Path
) -> None:
    for api in start_api(settings, tmp_path, "--log-format", "json", JOBQUEUE_API_ACCESS_LOG="false"):
        assert api.call("GET", "/api/v1/tasks/default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f", READ_KEY) == 404
        assert api.call("GET", "/api/v1/queues", READ_KEY) == 200
        assert api.access() == []
    text_dir = tmp_path / "text"
    text_dir.mkdir()
    for api in start_api(settings, text_dir, "--log-format", "text"):
        assert api.call("GET", "/api/v1/queues", READ_KEY) == 200
        wait_until(lambda api=api: "jobqueue_api.access: GET /api/v1/queues 200" in api.log.read_text())
