"""The process pool's idle wait in a child (worker/process_wait.py): an idle child pops the worker's inbox
on its own Redis connection and runs a handed-off task itself, while the worker process keeps the lease,
the hard time limit, cancellation and crash handling. Real ``jobqueue worker --pool process`` processes."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from jq_testing import runs, wait_until

from jobqueue import Client, TaskStatus
from jobqueue.errors import TaskFailed
from jobqueue.worker.process_child import CHILD_WAIT_CLIENT

pytestmark = pytest.mark.timeout(90)
QUEUE = "default"
StartWorker = Callable[..., Any]


def parked(client: Client) -> dict[str, str]:
    return client.redis.hgetall(client.queue_keys(QUEUE).parked)  # type: ignore[no-any-return]


def handed_off(client: Client) -> int:
    return int(client.redis.hget(client.queue_keys(QUEUE).stats, "handed_off") or 0)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (its children, and the fork server's children: replacements)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # gone meanwhile
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def waiting_children(client: Client, worker_pid: int) -> list[int]:
    """Pids of this worker's children blocked in an idle wait (their named connections; BLPOP's keys are
    not in CLIENT LIST, and a child of an earlier test's worker may still be connected)."""
    mine = descendants(worker_pid)
    return [
        pid
        for entry in client.redis.client_list()
        if entry.get("name", "").startswith(f"{CHILD_WAIT_CLIENT}-") and entry.get("cmd") == "blpop"
        if (pid := int(entry["name"].rsplit("-", 1)[1])) in mine
    ]


def starts(client: Client, task_id: str) -> int:
    return sum(1 for tid, what, _ in runs(client) if tid == task_id and what == "start")


def idle_child(client: Client, worker: Any, worker_id: str) -> int:
    wait_until(lambda: worker_id in parked(client) and waiting_children(client, worker.pid), timeout=30)
    return waiting_children(client, worker.pid)[0]


def test_an_idle_child_waits_on_redis_and_runs_the_handed_off_task_itself(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker("--worker-id", "pod-cw", "--pool", "process", "--concurrency", "2")
    child = idle_child(client, worker, "pod-cw")
    assert child != worker.pid
    for i in range(5):
        assert client.enqueue("add", [i, 1]).result(timeout=20) == i + 1
    assert handed_off(client) >= 1
    h = client.enqueue("record", [], {"sleep": 0.0})
    assert h.result(timeout=20) == h.id and starts(client, h.id) == 1
    assert worker.terminate() == 0
    assert "pod-cw" not in parked(client)


def test_a_handed_off_task_in_a_child_is_killed_at_its_hard_time_limit(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker("--worker-id", "pod-hl", "--pool", "process", "--concurrency", "1")
    idle_child(client, worker, "pod-hl")
    h = client.enqueue("stubborn", [30.0], timeout=1.0)  # ignores its soft limit: only a kill stops it
    assert handed_off(client) == 1
    with pytest.raises(TaskFailed) as info:
        h.result(timeout=20)
    assert info.value.status == "TIMEOUT"
    # The killed child was replaced, and its replacement waits and serves in turn.
    idle_child(client, worker, "pod-hl")
    assert client.enqueue("add", [2, 3]).result(timeout=20) == 5


def test_a_handed_off_task_in_a_child_can_be_force_cancelled(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker("--worker-id", "pod-fc", "--pool", "process", "--concurrency", "1")
    idle_child(client, worker, "pod-fc")
    h = client.enqueue("spin", [30.0])
    wait_until(lambda: starts(client, h.id) == 1, timeout=20)
    assert handed_off(client) == 1
    assert client.cancel(h.id, force=True, reason="user_requested") == "requested"
    wait_until(lambda: client.get_task(h.id).status == TaskStatus.CANCELLED, timeout=20)
    time.sleep(0.5)  # a retry (backoff 0.05 s) would have started by now
    assert starts(client, h.id) == 1
    assert client.enqueue("add", [2, 2]).result(timeout=20) == 4


def test_a_child_that_crashes_in_a_handed_off_task_is_reported_and_replaced(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker("--worker-id", "pod-cr", "--pool", "process", "--concurrency", "1")
    idle_child(client, worker, "pod-cr")
    h = client.enqueue("crash", [])
    assert handed_off(client) == 1
    with pytest.raises(TaskFailed):
        h.result(timeout=20)
    assert "exited with code 13" in (client.get_task(h.id).error or "")
    assert client.enqueue("add", [1, 2]).result(timeout=20) == 3


def test_a_child_killed_while_it_waits_is_replaced_and_the_worker_keeps_serving(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker("--worker-id", "pod-kw", "--pool", "process", "--concurrency", "1")
    child = idle_child(client, worker, "pod-kw")
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: child not in waiting_children(client, worker.pid), timeout=20)
    for i in range(3):
        assert client.enqueue("add", [i, i]).result(timeout=30) == 2 * i


def test_a_record_that_is_not_utf8_in_the_inbox_does_not_stop_the_child_or_the_worker(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker("--worker-id", "pod-bad", "--pool", "process", "--concurrency", "1")
    child = idle_child(client, worker, "pod-bad")
    raw = redis.Redis.from_url(client.settings.redis_url.get_secret_value())
    try:
        raw.rpush(client.queue_keys(QUEUE).inbox("pod-bad"), b"\xff\xfe\x00not utf-8")
    finally:
        raw.close()
    wait_until(lambda: "idle wait in a child process failed: UnicodeDecodeError" in worker.log(), timeout=20)
    assert client.enqueue("add", [20, 22]).result(timeout=30) == 42
    assert idle_child(client, worker, "pod-bad") == child  # the same child, still serving
