"""A real worker process logs one JSON line per task transition (stderr is a file here, not a terminal,
so the automatic format is JSON), with no arguments or results unless the payload setting asks for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jq_testing import wait_until, worker_env

from jobqueue import Client, Settings, TaskStatus

TASK_LOGGER = "jobqueue.worker.tasks"
FINAL = {TaskStatus.SUCCESS, TaskStatus.FAILED}


def task_lines(log: str, task_id: str) -> list[dict[str, Any]]:
    """The task log's lines about one task, in order (every line must be JSON: no text mixed in)."""
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    return [line for line in lines if line["logger"] == TASK_LOGGER and line["task_id"] == task_id]


def finish(client: Client, task_id: str) -> None:
    wait_until(lambda: client.get_task(task_id).status in FINAL, timeout=30)


def test_a_success_a_retry_and_a_dead_letter_line_by_line(
    client: Client, start_worker: Callable[..., Any]
) -> None:
    # DEBUG: received and started too (the end of each attempt is logged at INFO and above).
    worker = start_worker("--pool", "thread", "--concurrency", "1", "--worker-id", "w-log", log_level="DEBUG")
    ok = client.enqueue("add", [2, 3])
    retried = client.enqueue("fail_times", [1], max_retries=3)  # fails once, then succeeds
    dead = client.enqueue("fail_with", ["value"])  # ValueError: not retried, dead-lettered
    for handle in (ok, retried, dead):
        finish(client, handle.id)
    # The acker logs after Redis replied, which may be just after a client sees the status.
    wait_until(lambda: len(task_lines(worker.log(), dead.id)) == 4, timeout=10)
    log = worker.log()
    worker.terminate()

    common = {"task": "add", "queue": "default", "worker": "w-log", "task_id": ok.id}
    lines = task_lines(log, ok.id)
    assert [(line["event"], line["attempt"], line["level"]) for line in lines] == [
        ("received", 1, "DEBUG"),
        ("started", 1, "DEBUG"),
        ("succeeded", 1, "INFO"),
    ]
    for line in lines:
        assert common.items() <= line.items()
        assert not {"task_args", "task_kwargs", "result"} & line.keys()  # payloads only when the setting asks
    assert lines[-1]["duration_ms"] >= 0 and "duration_ms" not in lines[0]

    lines = task_lines(log, retried.id)
    assert [(line["event"], line["attempt"]) for line in lines] == [
        ("received", 1),
        ("started", 1),
        ("retried", 1),
        ("received", 2),
        ("started", 2),
        ("succeeded", 2),
    ]
    assert lines[2]["level"] == "WARNING" and lines[2]["error"] == "OSError: attempt 1 fails"
    assert lines[2]["duration_ms"] >= 0

    lines = task_lines(log, dead.id)
    assert [(line["event"], line["level"]) for line in lines] == [
        ("received", "DEBUG"),
        ("started", "DEBUG"),
        ("failed", "ERROR"),
        ("dead_lettered", "ERROR"),
    ]
    assert lines[2]["error"] == lines[3]["error"] == "ValueError: bad input"
    assert lines[2]["status"] == "FAILED" and lines[2]["task"] == "fail_with"


def test_payloads_are_logged_cut_only_when_the_setting_asks(
    settings: Settings, client: Client, start_worker: Callable[..., Any]
) -> None:
    noisy = settings.model_copy(update={"log_task_payload_chars": 12})
    worker = start_worker("--pool", "thread", "--concurrency", "1", worker_settings=noisy, log_level="DEBUG")
    # A newline (log-line injection) and a long string: the line stays one JSON object, the argument cut
    # to 12 characters.
    handle = client.enqueue("add", ["fake\n{}" + "x" * 5000, "y"])
    finish(client, handle.id)
    wait_until(lambda: len(task_lines(worker.log(), handle.id)) == 3, timeout=10)
    lines = task_lines(worker.log(), handle.id)
    worker.terminate()
    received, succeeded = lines[0], lines[2]
    kept, _, rest = received["task_args"].partition("...[")
    assert kept == '["fake\\n{}xx' and rest.endswith(" more]")
    assert received["task_kwargs"] == "{}"
    assert succeeded["result"].startswith('"fake\\n{}x') and succeeded["result"].endswith(" more]")


def test_at_info_one_line_per_attempt_and_text_on_request(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    """The default level logs each attempt's end only; --log-format text overrides the automatic JSON."""
    handle = client.enqueue("add", [1, 2])  # before the burst worker starts, which exits once idle
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as out:
        worker = subprocess.Popen(
            [
                *(sys.executable, "-m", "jobqueue", "--log-format", "text"),
                *("worker", "--app", "jq_test_app:app", "--pool", "thread", "--burst"),
            ],
            env={**os.environ, **worker_env(settings)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        assert worker.wait(60) == 0
    lines = [line for line in log_path.read_text().splitlines() if handle.id in line]
    assert len(lines) == 1, lines
    assert " INFO jobqueue.worker.tasks: task add[" in lines[0] and " succeeded in " in lines[0]


def test_success_lines_gated_at_debug_keep_failure_and_retry_lines(
    settings: Settings, client: Client, start_worker: Callable[..., Any]
) -> None:
    """JOBQUEUE_LOG_TASK_SUCCESS_LEVEL=DEBUG: a worker at INFO writes no line for a task that succeeds,
    and still every retry and failure line (the asyncio pool, where the line was ~18% of a no-op)."""
    quiet = settings.model_copy(update={"log_task_success_level": "DEBUG"})
    worker = start_worker("--pool", "async", "--concurrency", "4", worker_settings=quiet)
    ok = client.enqueue("async_add", [2, 3])
    retried = client.enqueue("fail_times", [1], max_retries=3)  # fails once, then succeeds
    dead = client.enqueue("fail_with", ["value"])
    for handle in (ok, retried, dead):
        finish(client, handle.id)
    wait_until(lambda: len(task_lines(worker.log(), dead.id)) == 2, timeout=10)
    log = worker.log()
    worker.terminate()
    assert task_lines(log, ok.id) == []
    retried_lines = task_lines(log, retried.id)  # its second attempt succeeded: no line
    assert [(line["event"], line["level"]) for line in retried_lines] == [("retried", "WARNING")]
    assert [line["event"] for line in task_lines(log, dead.id)] == ["failed", "dead_lettered"]


def test_success_lines_at_debug_show_at_debug(
    settings: Settings, client: Client, start_worker: Callable[..., Any]
) -> None:
    quiet = settings.model_copy(update={"log_task_success_level": "DEBUG"})
    worker = start_worker("--pool", "async", "--concurrency", "4", worker_settings=quiet, log_level="DEBUG")
    ok = client.enqueue("async_add", [2, 3])
    finish(client, ok.id)
    wait_until(lambda: len(task_lines(worker.log(), ok.id)) == 3, timeout=10)
    lines = task_lines(worker.log(), ok.id)
    worker.terminate()
    assert [(line["event"], line["level"]) for line in lines][-1] == ("succeeded", "DEBUG")
    assert lines[-1]["duration_ms"] >= 0 and lines[-1]["task"] == "async_add"
