"""``jobqueue worker --processes N``: one parent, N complete worker processes with their own ids, drained
together on SIGTERM, a killed one replaced under its id with its tasks given back at once."""

from __future__ import annotations

import collections
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import runs, wait_until

from jobqueue import Client, Settings, TaskStatus

pytestmark = pytest.mark.timeout(90)

StartWorker = Callable[..., Any]
# Each process leases only what it can start (no prefetch), so the tasks spread over both.
TWO_PROCESSES = ("--pool", "thread", "--processes", "2", "--worker-id", "wp", "--prefetch", "0")


def worker_ids(client: Client) -> set[str]:
    return {w.id for w in client.list_workers()}


def test_processes_run_tasks_under_distinct_worker_ids(client: Client, start_worker: StartWorker) -> None:
    worker = start_worker(*TWO_PROCESSES, "--concurrency", "2")
    wait_until(lambda: worker_ids(client) == {"wp_0", "wp_1"}, 30)
    handles = [client.enqueue("record", [], {"sleep": 0.05}) for _ in range(40)]
    for h in handles:
        h.result(timeout=30)
    assert {client.get_task(h.id).worker for h in handles} == {"wp_0", "wp_1"}
    assert len({pid for _, what, pid in runs(client) if what == "done"}) == 2  # two interpreters
    assert worker.pid not in {int(pid) for _, _, pid in runs(client)}  # the parent runs no task


def test_sigterm_drains_every_process_and_exits_0(client: Client, start_worker: StartWorker) -> None:
    worker = start_worker(*TWO_PROCESSES, "--concurrency", "2", "--grace", "20")
    wait_until(lambda: worker_ids(client) == {"wp_0", "wp_1"}, 30)
    handles = [client.enqueue("record", [], {"sleep": 1.5}) for _ in range(4)]
    wait_until(lambda: sum(1 for r in runs(client) if r[1] == "start") == 4, 30)
    assert worker.terminate(timeout=40) == 0
    # Every task that was running finished (none handed back, none run twice) and both deregistered.
    assert all(client.get_task(h.id).status == TaskStatus.SUCCESS for h in handles)
    assert collections.Counter(task for task, what, _ in runs(client) if what == "done") == dict.fromkeys(
        (h.id for h in handles), 1
    )
    assert worker_ids(client) == set()
    assert "grace period over" not in worker.log()


def test_a_killed_process_is_replaced_and_its_task_given_back_at_once(
    settings: Settings, start_worker: StartWorker
) -> None:
    # A long lease: the task must come back through the parent's recovery, not through lease expiry.
    slow_lease = settings.model_copy(update={"lease_seconds": 60.0})
    client = Client(slow_lease)
    try:
        worker = start_worker(*TWO_PROCESSES, "--concurrency", "1", worker_settings=slow_lease)
        wait_until(lambda: worker_ids(client) == {"wp_0", "wp_1"}, 30)
        handles = [client.enqueue("record", [], {"sleep": 2.0}) for _ in range(2)]
        wait_until(lambda: sum(1 for r in runs(client) if r[1] == "start") == 2, 30)
        victim_task, _, victim_pid = runs(client)[0]
        victim_id = client.get_task(victim_task).worker
        os.kill(int(victim_pid), signal.SIGKILL)
        killed_at = time.monotonic()

        for h in handles:
            h.result(timeout=40)
        recovered_after = time.monotonic() - killed_at
        assert recovered_after < slow_lease.lease_seconds / 2
        done = collections.Counter(task for task, what, _ in runs(client) if what == "done")
        assert done == dict.fromkeys((h.id for h in handles), 1)  # nothing lost, nothing completed twice
        assert client.get_task(victim_task).attempts == 2
        # The replacement serves under the same id, in a new process.
        wait_until(lambda: worker_ids(client) == {"wp_0", "wp_1"}, 30)
        assert f"worker process {victim_id} died" in worker.log()
        assert worker.terminate(timeout=40) == 0
    finally:
        client.close()


def test_processes_drain_when_their_parent_is_killed(client: Client, start_worker: StartWorker) -> None:
    worker = start_worker(*TWO_PROCESSES, "--concurrency", "1")
    wait_until(lambda: worker_ids(client) == {"wp_0", "wp_1"}, 30)
    worker.process.send_signal(signal.SIGKILL)  # the parent only: no signal reaches the children
    worker.process.wait(10)
    wait_until(lambda: worker_ids(client) == set(), 30)


def test_processes_start_together_on_a_waiting_backlog(client: Client, start_worker: StartWorker) -> None:
    """The start gate: the first process up waits for its sibling, so a backlog waiting at start is
    shared, not taken whole by whichever process booted first (prefetch on, as by default)."""
    handles = [client.enqueue("add", [i, 1]) for i in range(1000)]
    worker = start_worker("--pool", "thread", "--concurrency", "8", "--processes", "2", "--worker-id", "wp")
    for h in handles:
        h.result(timeout=30)
    done_by = collections.Counter(client.get_task(h.id).worker for h in handles)
    assert set(done_by) == {"wp_0", "wp_1"}, done_by
    assert "2 of 2 worker process(es) up: start" in worker.log()
