"""Nothing long-lived dies silently (issue 15), service side: the scheduler and the ``--processes``
parent survive unexpected exceptions in their loops, on a real Redis with real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from typing import Any

import pytest
from jq_testing import wait_until, worker_env

from jobqueue import Client, Settings, TaskStatus
from jobqueue.broker.leases import build_fetch, parse_fetch
from jobqueue.broker.redis_io import run_script
from jobqueue.services import scheduler as scheduler_module
from jobqueue.services.scheduler import Scheduler
from jobqueue.worker import processes as processes_module
from jobqueue.worker.processes import WorkerProcesses


@pytest.mark.timeout(30)
def test_a_scheduler_whose_schedules_keep_failing_still_recovers_leases(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("injected fault in fire_due_schedules")

    monkeypatch.setattr(scheduler_module, "fire_due_schedules", broken)
    client = Client(settings.model_copy(update={"lease_seconds": 0.3}))
    h = client.enqueue("add", [1, 2])
    [job] = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 1, "gone"))
    ).jobs
    assert job.id == h.id
    scheduler = Scheduler(client, interval_seconds=0.05)
    thread = threading.Thread(target=scheduler.run, daemon=True)
    thread.start()
    try:
        # The worker "gone" never renews: the lease expires and the scheduler gives the task back, although
        # every one of its schedule passes fails.
        wait_until(lambda: client.get_task(h.id).status == TaskStatus.QUEUED, timeout=10)
        wait_until(lambda: caplog.text.count("scheduler failed unexpectedly") >= 2, timeout=10)
        assert thread.is_alive()
    finally:
        scheduler.stop()
        thread.join(10)
        client.close()
    assert not thread.is_alive()
    assert "injected fault in fire_due_schedules" in caplog.text


@pytest.mark.timeout(90)
def test_the_processes_parent_survives_a_failed_restart_and_starts_the_child_later(
    client: Client, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in worker_env(settings).items():
        monkeypatch.setenv(name, value)
    real_popen = subprocess.Popen
    failures = {"left": 0}

    def popen(*args: Any, **kwargs: Any) -> Any:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OSError(11, "injected: Resource temporarily unavailable")
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(processes_module.subprocess, "Popen", popen)
    parent = WorkerProcesses(
        ["worker", "--app", "jq_test_app:app", "--pool", "thread", "--concurrency", "1", "--grace", "5"],
        base_id="parent",
        processes=2,
        grace_seconds=5,
        recover_leases=lambda worker_id: client.recover_expired_leases(worker_id=worker_id) and None,
    )
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(parent.run()), daemon=True)
    thread.start()
    try:
        wait_until(lambda: len({w.id for w in client.list_workers()}) == 2, timeout=40)
        victim = parent.children["parent_0"]
        failures["left"] = 2  # the next two starts fail (no pids left, no memory)
        os.kill(victim.process.pid, signal.SIGKILL)
        wait_until(
            lambda: (
                "parent_0" in parent.children
                and parent.children["parent_0"].process.pid != victim.process.pid
            ),
            timeout=30,
        )
        assert thread.is_alive() and failures["left"] == 0
        # Up and serving (a child stopped while it still imports exits by the signal, not 0).
        new_pid = parent.children["parent_0"].process.pid
        wait_until(
            lambda: any(w.id == "parent_0" and w.pid == new_pid for w in client.list_workers()),
            timeout=30,
        )
        assert client.enqueue("add", [2, 3]).result(timeout=30) == 5
    finally:
        parent.stop()
        thread.join(60)
    assert codes == [0]
