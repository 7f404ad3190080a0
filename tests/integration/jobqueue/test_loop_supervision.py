"""Nothing long-lived dies silently (issue 15): faults injected into a real worker's loops on a real Redis.

Each worker here is a real ``jobqueue worker`` process started through tests/support/jq_faulty.py,
which makes one method raise RuntimeError a number of times (or always). A loop that fails a few times is
run again and the task completes; a loop that keeps failing makes the worker stop heartbeating and exit
70 (EXIT_LOOP_DIED), and its task is then run by another worker. Never a live worker sitting on a task.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jq_testing import SUPPORT, runs, wait_until, worker_env

from jobqueue import Client, Settings, TaskFailed, TaskStatus
from jobqueue.supervision import EXIT_LOOP_DIED

StartWorker = Callable[..., Any]
FaultyWorker = Callable[..., subprocess.Popen[bytes]]

ACKER = "jobqueue.worker.acking:Acking._record"
HEARTBEAT = "jobqueue.worker.heartbeat:Heartbeating.heartbeat_once"
FETCHER = "jobqueue.worker.fetching:Fetching._fetch"
CANCEL_LISTENER = "jobqueue.worker.heartbeat:Heartbeating._cancel_listener"
PROCESS_MONITOR = "jobqueue.worker.process_pool:ProcessPool._collect"
THREAD_MONITOR = "jobqueue.worker.thread_pool:ThreadPool._monitor"
THREAD_SLOT = "jobqueue.worker.thread_pool:ThreadPool._run"
# Where every pool hands a finished attempt to the worker: an outcome lost there would leave its task
# leased for ever, so one failure is enough to end the worker.
ON_OUTCOME = "jobqueue.worker.runtime:Worker._on_outcome"
DRAIN = "jobqueue.worker.draining:Draining._drain"


@pytest.fixture
def faulty_worker(settings: Settings, tmp_path: Path) -> Iterator[FaultyWorker]:
    started: list[subprocess.Popen[bytes]] = []

    def start(fault: str, *args: str) -> subprocess.Popen[bytes]:
        log_path = tmp_path / f"faulty{len(started)}.log"
        with log_path.open("ab") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(SUPPORT / "jq_faulty.py"),
                    "jobqueue",
                    "worker",
                    "--app",
                    "jq_test_app:app",
                    *args,
                ],
                env={**os.environ, **worker_env(settings), "JQ_FAULT": fault},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process.log_path = log_path  # type: ignore[attr-defined]
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def log_of(process: subprocess.Popen[bytes]) -> str:
    path: Path = process.log_path  # type: ignore[attr-defined]
    return path.read_text(errors="replace")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("fault", "pool"),
    [
        (ACKER, "thread"),
        (HEARTBEAT, "thread"),
        (FETCHER, "thread"),
        (CANCEL_LISTENER, "thread"),
        (THREAD_MONITOR, "thread"),
        (PROCESS_MONITOR, "process"),
    ],
    ids=["acker", "heartbeat", "fetcher", "cancel-listener", "thread-monitor", "process-monitor"],
)
def test_a_loop_that_fails_a_few_times_recovers_and_the_worker_keeps_serving(
    client: Client, faulty_worker: FaultyWorker, fault: str, pool: str
) -> None:
    worker = faulty_worker(f"{fault}:3", "--pool", pool, "--concurrency", "2")
    handles = [client.enqueue("add", [i, 1]) for i in range(5)]
    assert [h.result(timeout=30) for h in handles] == [i + 1 for i in range(5)]
    wait_until(lambda: log_of(worker).count("failed unexpectedly") >= 3, timeout=15)
    assert "injected fault" in log_of(worker)  # logged with its traceback, not swallowed
    assert worker.poll() is None
    assert client.enqueue("add", [20, 22]).result(timeout=20) == 42


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("fault", "pool"),
    [
        (ACKER, "thread"),
        (ACKER, "process"),
        (HEARTBEAT, "thread"),
        (PROCESS_MONITOR, "process"),
        (THREAD_SLOT, "thread"),
        (f"{ON_OUTCOME}:1", "thread"),
        (f"{ON_OUTCOME}:1", "process"),
        (f"{ON_OUTCOME}:1", "async"),
    ],
    ids=[
        "acker-thread-pool",
        "acker-process-pool",
        "heartbeat",
        "process-monitor",
        "thread-slot",
        "outcome-thread-pool",
        "outcome-process-pool",
        "outcome-async-pool",
    ],
)
def test_a_loop_that_keeps_failing_exits_non_zero_and_its_task_runs_elsewhere(
    client: Client, faulty_worker: FaultyWorker, start_worker: StartWorker, fault: str, pool: str
) -> None:
    doomed = faulty_worker(fault, "--pool", pool, "--concurrency", "1", "--worker-id", "doomed")
    # Long enough to be still running when the worker gives up on a failing heartbeat.
    h = client.enqueue("record", [], {"sleep": 3.0})
    assert doomed.wait(40) == EXIT_LOOP_DIED
    assert f"exiting with code {EXIT_LOOP_DIED}" in log_of(doomed)
    # It stopped heartbeating and deregistered: no longer listed as a live worker.
    assert "doomed" not in {w.id for w in client.list_workers()}
    start_worker("--concurrency", "1", "--worker-id", "survivor")
    assert h.result(timeout=30) == h.id
    record = client.get_task(h.id)
    assert (record.status, record.worker) == (TaskStatus.SUCCESS, "survivor")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("pool", ["process", "thread", "async"])
def test_a_drain_that_raises_ends_the_worker_and_its_task_runs_elsewhere(
    client: Client, faulty_worker: FaultyWorker, start_worker: StartWorker, pool: str
) -> None:
    """The worker's run raising (here its drain) must end the process so it is restarted: the process
    pool's children ignore SIGTERM, and the interpreter's exit waited for them for ever."""
    doomed = faulty_worker(DRAIN, "--pool", pool, "--concurrency", "1", "--worker-id", "doomed")
    h = client.enqueue("record", [], {"sleep": 3.0})
    wait_until(lambda: started_runs(client, h.id) == 1, timeout=30)
    doomed.terminate()
    assert doomed.wait(30) not in (0, None)
    assert "injected fault in Draining._drain" in log_of(doomed)
    start_worker("--concurrency", "1", "--worker-id", "survivor")
    assert h.result(timeout=30) == h.id
    assert client.get_task(h.id).status == TaskStatus.SUCCESS


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_lone_surrogate_in_an_exception_does_not_wedge_the_worker(
    client: Client, start_worker: StartWorker, pool: str
) -> None:
    """Defect 2 of issue 15: the acker died on the unencodable error text and the worker kept
    heartbeating, so the task stayed RUNNING for ever and every later task waited behind it."""
    worker = start_worker("--pool", pool, "--concurrency", "1")
    h = client.enqueue("raise_surrogate")
    with pytest.raises(TaskFailed) as info:
        h.result(timeout=20)
    assert "bad" in (info.value.error or "") and "byte" in (info.value.error or "")
    assert client.get_task(h.id).status == TaskStatus.FAILED
    assert client.enqueue("add", [1, 2]).result(timeout=20) == 3
    assert worker.process.poll() is None


def started_runs(client: Client, task_id: str) -> int:
    return sum(1 for tid, what, _ in runs(client) if tid == task_id and what == "start")
