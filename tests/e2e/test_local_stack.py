"""`jobqueue up`, what `make run` starts, end to end: the embedded Redis and PostgreSQL, the API with a
generated key, the scheduler, the recorder and the supervised workers. A task submitted with the printed
key completes, its history reaches PostgreSQL, and SIGINT (Ctrl-C) stops everything with exit code 0."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from jobqueue.embedded.redis_server import free_port

pytestmark = pytest.mark.timeout(240)


def request(method: str, url: str, key: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except (urllib.error.URLError, ConnectionError):
        return 0, None


def poll(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Stack:
    """A running `jobqueue up`, its stdout read line by line on a thread."""

    def __init__(self, data_dir: Path, api_port: int) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "jobqueue", "up", "--data-dir", str(data_dir), "--redis-port", "0",
                "--api-port", str(api_port), "--demo-rate", "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Its own process group, so a failed test can stop every child it started.
            start_new_session=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")},
        )  # fmt: skip
        assert self.process.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.output.append(line.rstrip())
            self.lines.put(line.rstrip())

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no {prefix!r} line; output so far:\n" + "\n".join(self.output))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Stack, int]]:
    port = free_port()
    running = Stack(tmp_path / "data", port)
    try:
        yield running, port
    finally:
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait(10)
        running.reader.join(10)
        assert running.process.stdout is not None
        running.process.stdout.close()


def test_up_serves_the_api_runs_a_task_records_it_and_stops_on_ctrl_c(stack: tuple[Stack, int]) -> None:
    running, port = stack
    base = f"http://127.0.0.1:{port}"
    assert base in running.wait_for_line("Web UI and API:", 180)
    key = running.wait_for_line("API key:", 10).split()[-1]
    curl = running.wait_for_line("Submit a task:", 10)
    assert f"Bearer {key}" in curl and f"{base}/api/v1/tasks" in curl

    ready = (200, {"status": "ok", "redis": "up", "postgres": "up"})
    poll(lambda: request("GET", f"{base}/readyz", key) == ready, 60, "/readyz with Redis and PostgreSQL")
    # The printed key works, and only it.
    assert request("GET", f"{base}/api/v1/queues", "wrong-key")[0] == 401
    status, body = request("POST", f"{base}/api/v1/tasks", key, {"name": "add", "args": [1, 2]})
    assert status == 201, body
    [task_id] = body["ids"]

    def finished() -> Any:
        code, task = request("GET", f"{base}/api/v1/tasks/{task_id}", key)
        return task if code == 200 and task["status"] == "SUCCESS" else None

    def recorded() -> Any:
        code, history = request("GET", f"{base}/api/v1/tasks/{task_id}/history", key)
        events = history.get("events", []) if code == 200 else []
        return history if any(e.get("event") == "succeeded" for e in events) else None

    assert poll(finished, 60, "the task to be run by a supervised worker")["result"] == 3
    # The recorder wrote its history into the embedded PostgreSQL.
    assert poll(recorded, 60, "the recorder to write the task's history")["task"]["status"] == "SUCCESS"

    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(60) == 0, "\n".join(running.output)
