"""`jobqueue up`, what `make run` starts, end to end: the embedded Redis and PostgreSQL, the API with a
generated key, the scheduler, the recorder and the supervised workers. A task submitted with the printed
key completes, its history reaches PostgreSQL, and SIGINT (Ctrl-C) stops everything with exit code 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from http_calls import OutputLines, poll, request

from jobqueue.embedded.redis_server import free_port

pytestmark = pytest.mark.timeout(240)


class Stack:
    """A running `jobqueue up`, its stdout read line by line on a thread."""

    def __init__(self, data_dir: Path, api_port: int) -> None:
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
            # A key in the user's shell must not reach the workers either (checked below).
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")},
                "JOBQUEUE_API_KEYS": "shell-key:admin",
            },
        )  # fmt: skip
        self.reader = OutputLines(self.process)
        self.output = self.reader.output

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        return self.reader.wait_for_line(prefix, timeout)


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


def children_environ(parent: int) -> dict[str, dict[str, str]]:
    """{command line: environment} of each child process of ``parent`` (from /proc)."""
    found: dict[str, dict[str, str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            raw = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        pairs = (entry.decode(errors="replace").partition("=") for entry in raw if entry)
        found[cmdline] = {k: v for k, _, v in pairs}
    return found


def check_least_privilege(running: Stack, data_dir: Path) -> None:
    """Issue 15 #17: Redis and PostgreSQL need passwords, the data dir is private, and only the API
    process holds the admin key."""
    assert stat_mode(data_dir) == 0o700
    redis_address = running.wait_for_line("Redis:", 1).split()[1]
    assert "@" not in redis_address  # the password is not printed
    redis_port = int(redis_address.split(":")[1].split("/")[0])
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=redis_port, socket_timeout=5).ping()
    pg_address = running.wait_for_line("PostgreSQL:", 1).split()[1]
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(f"postgresql://postgres@{pg_address}", connect_timeout=5)
    children = children_environ(running.process.pid)
    workers = {cmd: env for cmd, env in children.items() if " worker " in f"{cmd} "}
    apis = [env for cmd, env in children.items() if cmd.rstrip().endswith(" api")]
    assert workers and apis, children.keys()
    for cmd, env in workers.items():
        assert not env.get("JOBQUEUE_API_KEYS"), cmd
    assert all(env.get("JOBQUEUE_API_KEYS") for env in apis)


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_up_serves_the_api_runs_a_task_records_it_and_stops_on_ctrl_c(
    stack: tuple[Stack, int], tmp_path: Path
) -> None:
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
    check_least_privilege(running, tmp_path / "data")

    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(60) == 0, "\n".join(running.output)
