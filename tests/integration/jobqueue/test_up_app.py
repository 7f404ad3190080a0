"""`jobqueue up --app`: the whole local stack serving a user's project (examples/quickstart), and the bad
`--app` values that must stop it before anything starts."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_calls import OutputLines, poll, request

from jobqueue.embedded.redis_server import free_port

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "examples" / "quickstart"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}


def up(project: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobqueue", "up", "--data-dir", str(project / "data"), *args],
        cwd=project,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "notasks.py").write_text("from jobqueue import App\n\napp = App()\n")
    (tmp_path / "noapp.py").write_text("app = object()\n")
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "syntax.py").write_text("def (:\n")
    return tmp_path


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("nosuchmodule:app", "error: cannot import 'nosuchmodule': No module named 'nosuchmodule'"),
        ("noapp:app", "error: 'noapp:app' is not a jobqueue App"),
        ("noapp:missing", "error: 'noapp:missing' is not a jobqueue App"),
        ("notasks:app", "error: 'notasks:app' registers no task: there is nothing for the workers to run"),
        ("broken:app", "error: importing 'broken' failed: RuntimeError: boom at import"),
        ("noseparator", "error: --app must look like 'package.module:app', got 'noseparator'"),
        ("\udcff:app", None),
    ],
)
def test_a_bad_app_is_one_line_exit_2_and_nothing_started(
    project: Path, app: str, message: str | None
) -> None:
    done = up(project, "--app", app, "--redis-port", "0")
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    if message is not None:
        assert lines[0] == message
    assert done.stdout == ""
    assert not (project / "data").exists()  # not even the data directory


def test_a_syntax_error_in_the_app_is_one_line(project: Path) -> None:
    done = up(project, "--app", "syntax:app")
    assert done.returncode == 2
    assert done.stderr.startswith("error: importing 'syntax' failed: SyntaxError")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-workers", "0"], "error: min-workers: must be >= 1"),
        (["--min-workers", "3", "--max-workers", "2"], "error: max-workers: must be >= --min-workers (3)"),
        (["--concurrency", "0"], "error: concurrency: must be >= 1"),
        (["--queues", " , "], "error: queues: names no queue"),
        (["--queues", "ok,bad queue"], None),
        (["--queues", "a\udcffb"], None),  # a lone surrogate (an undecodable byte in argv)
    ],
)
def test_bad_options_are_refused_before_anything_starts(
    project: Path, args: list[str], message: str | None
) -> None:
    (project / "tasks.py").write_text(
        "from jobqueue import App\n\napp = App()\n\n\n@app.task\ndef t():\n    pass\n"
    )
    done = up(project, "--app", "tasks:app", *args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    if message is not None:
        assert lines[0] == message
    else:
        assert lines[0].startswith("error: queues: ")
    assert not (project / "data").exists()


# -- the whole stack ------------------------------------------------------------------------------------


class Stack:
    """A running `jobqueue up --app`, its output read line by line on a thread."""

    def __init__(self, project: Path, api_port: int, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobqueue", "up", "--data-dir", str(project / "data"), "--redis-port", "0",
             "--api-port", str(api_port), *args],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a failed test can stop every child it started
            env=clean_env(),
        )  # fmt: skip
        self.reader = OutputLines(self.process)
        self.output = self.reader.output

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        return self.reader.wait_for_line(prefix, timeout)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Stack, Path, int]]:
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    port = free_port()
    running = Stack(project, port, "--app", "tasks:app", "--reload")
    try:
        yield running, project, port
    finally:
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait(10)
        running.reader.join(10)
        assert running.process.stdout is not None
        running.process.stdout.close()


@pytest.mark.timeout(240)
def test_up_serves_the_users_app_over_http_and_reloads_its_code(stack: tuple[Stack, Path, int]) -> None:
    running, project, port = stack
    assert running.wait_for_line("App:", 60) == "App:            tasks:app"
    assert running.wait_for_line("Queues:", 5) == "Queues:         default, email"
    assert running.wait_for_line("Tasks:", 5) == "Tasks:          add, reject_order, send_receipt"
    base = f"http://127.0.0.1:{port}"
    running.wait_for_line("Web UI and API:", 180)
    key = running.wait_for_line("API key:", 10).split()[-1]
    assert '{"name": "add", "args": [1, 2]}' in running.wait_for_line("Submit a task:", 10)
    poll(lambda: request("GET", f"{base}/readyz", key)[0] == 200, 60, "/readyz")

    def result_of(body: dict[str, Any], timeout: float = 60) -> Any:
        status, reply = request("POST", f"{base}/api/v1/tasks", key, body)
        assert status == 201, reply
        [task_id] = reply["ids"]

        def finished() -> Any:
            code, task = request("GET", f"{base}/api/v1/tasks/{task_id}", key)
            return task if code == 200 and task["status"] in ("SUCCESS", "FAILED") else None

        return poll(finished, timeout, f"task {body}")

    assert result_of({"name": "add", "args": [2, 3]})["result"] == 5
    # A task on the app's other queue is served too.
    receipt = result_of({"name": "send_receipt", "args": [7], "queue": "email"})
    assert receipt["result"] == "receipt for order 7 sent"

    # The user's own Python producer reaches the stack through the connection file (the Redis password
    # is never printed): the line says how, a shell runs it as written, the task runs on the stack.
    source = running.wait_for_line("Your code:", 10).split(None, 2)[-1].split("   (")[0]
    env_file = project / "data" / "env"
    assert source == f"set -a; . {env_file}; set +a"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert key not in env_file.read_text()  # the admin key reaches the API process alone
    producer = "from tasks import add; print(add.enqueue(4, 5).result(timeout=60))"
    done = subprocess.run(
        ["bash", "-c", f"{source}; {shlex.quote(sys.executable)} -c {shlex.quote(producer)}"],
        check=False, cwd=project, env=clean_env(), capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "9"), done.stderr

    # --reload: a change to the project's source restarts the workers on the new code.
    tasks_py = project / "tasks.py"
    tasks_py.write_text(tasks_py.read_text().replace("return x + y", "return x * y"))
    running.wait_for_line("source changed: restarting the workers", 30)
    # The old workers may take one more task while they learn of their drain: submit until one is new.
    poll(lambda: result_of({"name": "add", "args": [2, 3]}).get("result") == 6, 90, "the reloaded code")

    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(60) == 0, "\n".join(running.output)
    assert not env_file.exists()  # its password was this run's only


@pytest.mark.timeout(300)
def test_pools_created_over_rest_run_real_workers(tmp_path: Path) -> None:
    """Issue 18 with `jobqueue up`: the same REST calls create, scale and delete local worker processes,
    shown in GET /api/v1/workers."""
    project = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, project, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    port = free_port()
    running = Stack(project, port, "--app", "tasks:app")
    try:
        running.wait_for_line("Web UI and API:", 180)
        key = running.wait_for_line("API key:", 10).split()[-1]
        base = f"http://127.0.0.1:{port}/api/v1"
        poll(lambda: request("GET", f"http://127.0.0.1:{port}/readyz", key)[0] == 200, 60, "/readyz")
        assert request("GET", f"{base}/worker-pools", key) == (200, {"backend": "local", "pools": []})
        pool = {"name": "mail", "queues": ["email"], "concurrency": 2, "replicas": 2}
        status, created = request("POST", f"{base}/worker-pools", key, pool)
        assert status == 201, created
        assert request("POST", f"{base}/worker-pools", key, pool)[0] == 409

        def pool_workers() -> set[str]:
            code, workers = request("GET", f"{base}/workers", key)
            assert code == 200, workers
            return {w["id"] for w in workers if w["id"].startswith("pool-mail-") and w["status"] != "DEAD"}

        poll(lambda: len(pool_workers()) == 2, 90, "two pool workers")
        poll(lambda: request("GET", f"{base}/worker-pools/mail", key)[1]["status"]["ready_replicas"] == 2,
             30, "ready replicas in the pool status")  # fmt: skip
        status, scaled = request("POST", f"{base}/worker-pools/mail/scale", key, {"replicas": 1})
        assert status == 200 and scaled["replicas"] == 1, scaled
        poll(lambda: len(pool_workers()) == 1, 90, "the scale-down to one worker")
        assert request("DELETE", f"{base}/worker-pools/mail", key)[0] == 204
        poll(lambda: not pool_workers(), 90, "the pool's workers to drain")
        code, events = request("GET", f"{base}/worker-pools/mail/events", key)
        kinds = [e["kind"] for e in events["events"]]
        assert code == 200
        assert {"Created", "Started", "ScaledUp", "Scaled", "ScaledDown", "Deleting"} <= set(kinds), kinds
        running.process.send_signal(signal.SIGINT)
        assert running.process.wait(60) == 0, "\n".join(running.output)
    finally:
        if running.process.poll() is None:
            os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait(10)
        running.reader.join(10)
        assert running.process.stdout is not None
        running.process.stdout.close()
