"""``ctx.set_progress``: real worker processes (every pool kind) write a task's latest progress to its
record, throttled; bad input is a typed error in the task and the worker keeps running."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
from jq_testing import wait_until

from jobqueue import Client, Settings, TaskRecord, TaskStatus
from jobqueue.broker.leases import build_fetch, parse_fetch
from jobqueue.broker.redis_io import run_script, script_sha
from jobqueue.broker.task_progress import write_progress
from jobqueue.cli import main as cli

pytestmark = pytest.mark.timeout(90)


def finished(client: Client, task_id: str) -> TaskRecord:
    wait_until(lambda: client.get_task(task_id).status.is_terminal, timeout=60)
    return client.get_task(task_id)


class ProgressWrites:
    """Counts the progress script calls Redis receives for one task (MONITOR on its own connection)."""

    def __init__(self, settings: Settings, task_key: str) -> None:
        self._conn = redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)
        self._sha = script_sha("progress")
        self._key = task_key
        self.seen: set[str] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        with self._conn.monitor() as monitor:
            self._ready.set()
            for command in monitor.listen():
                text = command["command"]
                if "progress-monitor-stop" in text:
                    return
                if self._sha in text and self._key in text:
                    # Distinct calls: the retry of a call Redis answered NOSCRIPT (the script loaded on
                    # first use) carries the same value, stamped once.
                    self.seen.add(text)

    def stop(self) -> int:
        self._conn.echo("progress-monitor-stop")
        self._thread.join(10)
        self._conn.close()
        return len(self.seen)


@pytest.mark.parametrize("pool", ["thread", "process", "async"])
def test_a_tight_loop_is_throttled_and_the_last_value_is_stored(
    pool: str, client: Client, start_worker: Callable[..., Any]
) -> None:
    steps = 300_000
    task_id = client.enqueue("report_progress", [steps, steps], queue="default").id
    writes = ProgressWrites(client.settings, client.queue_keys("default").task(task_id))
    start_worker("--pool", pool, "--concurrency", "1")
    record = finished(client, task_id)
    count = writes.stop()
    assert record.status == TaskStatus.SUCCESS, record.error
    assert record.progress is not None
    assert (record.progress["done"], record.progress["total"]) == (steps, steps)
    assert record.progress["message"] == f"step {steps}"
    assert record.started_at is not None and record.completed_at is not None
    ran = record.completed_at - record.started_at
    # At most one write per 0.5 s interval (plus the first and the final flush), however fast it reports.
    assert 1 <= count <= ran / 0.5 + 2, (count, ran)


BAD = {
    "total_below_done": "InvalidProgress: total: must be >= done (5), got 3",
    "negative": "InvalidProgress: done: must be >= 0, got -1",
    "nan": "InvalidProgress: done: must be a finite number, got nan",
    "huge": "InvalidProgress: done: must be at most 9007199254740992",
    "bool": "InvalidProgress: done: must be a number, got bool",
    "long_message": "InvalidProgress: message: must be at most 1000 characters",
    "surrogate": "InvalidProgress: message: contains a lone surrogate",
    "nul": "InvalidProgress: message: contains",
}


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_bad_progress_fails_the_task_with_a_typed_error_and_the_worker_goes_on(
    pool: str, client: Client, start_worker: Callable[..., Any]
) -> None:
    start_worker("--pool", pool, "--concurrency", "1")
    handles = {kind: client.enqueue("bad_progress", [kind], max_retries=0) for kind in BAD}
    after = client.enqueue("add", [2, 3])
    for kind, handle in handles.items():
        record = finished(client, handle.id)
        assert record.status == TaskStatus.FAILED
        assert record.error is not None and record.error.startswith(BAD[kind]), (kind, record.error)
        assert record.progress is None  # nothing was stored
    assert finished(client, after.id).result == 5


def test_a_stale_attempt_cannot_overwrite_progress(client: Client) -> None:
    """lua/progress.lua is fenced: only the attempt holding the lease writes."""
    task_id = client.enqueue("report_progress", [1, 1]).id
    value = {"done": 1, "total": 2, "message": None, "at": 1.0}
    assert not write_progress(client.redis, client.settings, task_id, 1, value)  # QUEUED: not running
    reply = run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
    [job] = parse_fetch("default", reply).jobs
    assert not write_progress(client.redis, client.settings, task_id, job.token + 1, value)
    assert client.get_task(task_id).progress is None
    assert write_progress(client.redis, client.settings, task_id, job.token, value)
    assert client.get_task(task_id).progress == value
    assert not write_progress(client.redis, client.settings, "default." + "0" * 32, 1, value)  # unknown


def test_a_progress_written_by_hand_is_not_a_crash(client: Client) -> None:
    task_id = client.enqueue("add", [1, 1]).id
    client.redis.hset(client.queue_keys("default").task(task_id), "progress", "[1, 2")
    assert client.get_task(task_id).progress is None


def test_jobqueue_status_shows_progress_and_expiry(
    client: Client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", client.settings.redis_url.get_secret_value())
    monkeypatch.setenv("JOBQUEUE_KEY_PREFIX", client.settings.key_prefix)
    monkeypatch.delenv("JOBQUEUE_API_URL", raising=False)
    assert cli.main(["enqueue", "report_progress", "--args", "[1, 1]", "--expires", "600"]) == 0
    task_id = capsys.readouterr().out.strip()
    reply = run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
    [job] = parse_fetch("default", reply).jobs
    value = {"done": 1, "total": 4, "message": "a quarter", "at": 2.0}
    assert write_progress(client.redis, client.settings, task_id, job.token, value)
    assert cli.main(["status", task_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["progress"] == value and shown["status"] == "RUNNING"
    assert shown["expires_at"] - shown["enqueued_at"] == pytest.approx(600, abs=5)
    with pytest.raises(SystemExit):
        cli.main(["enqueue", "add", "--expires", "soon"])
    assert "--expires: invalid float value" in capsys.readouterr().err
    assert cli.main(["enqueue", "add", "--expires", "-5"]) == 2
    assert "error: expires: must be a number of seconds > 0" in capsys.readouterr().err
