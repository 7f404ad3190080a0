"""Worker prefetch: tasks leased ahead of free slots start without a fetch round trip, yet every task
still runs exactly once, a drain hands unstarted ones straight back, and a cancel reaches them."""

from __future__ import annotations

import signal
from collections import Counter

import pytest
from jq_testing import runs, wait_until

from jobqueue import Client, TaskStatus

pytestmark = pytest.mark.timeout(90)


def warm_up(client: Client) -> None:
    """Prefetch is adaptive: it starts once the worker has seen short tasks finish."""
    for h in [client.enqueue("add", [1, 1]) for _ in range(3)]:
        h.result(timeout=30)


def test_prefetching_worker_runs_every_task_exactly_once(client: Client, start_worker) -> None:
    ids = [client.enqueue("record").id for _ in range(300)]
    start_worker("--concurrency", "2", "--prefetch", "4")
    wait_until(lambda: sum(1 for _, what, _ in runs(client) if what == "done") >= 300, timeout=60)
    starts = Counter(task_id for task_id, what, _ in runs(client) if what == "start")
    assert set(starts) == set(ids)
    assert max(starts.values()) == 1
    wait_until(lambda: client.queue_depth("default").in_flight == 0)
    assert {client.get_task(i).status for i in ids[:20]} == {TaskStatus.SUCCESS}


def test_sigterm_hands_prefetched_tasks_back_at_once(client: Client, start_worker) -> None:
    worker = start_worker("--pool", "thread", "--concurrency", "1", "--prefetch", "3", "--grace", "10")
    warm_up(client)
    ids = [client.enqueue("record", kwargs={"sleep": 1.5}).id for _ in range(4)]
    wait_until(lambda: len(runs(client)) >= 1 and client.queue_depth("default").in_flight == 4)
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(10) == 0
    # Only the task that had started ran; the three leased ahead are queued again, not left to expire.
    assert [what for _, what, _ in runs(client)] == ["start", "done"]
    depth = client.queue_depth("default")
    assert (depth.in_flight, depth.ready["medium"]) == (0, 3)
    ran = runs(client)[0][0]
    assert {client.get_task(i).status for i in ids if i != ran} == {TaskStatus.QUEUED}


def test_cancel_reaches_a_prefetched_task_before_it_starts(client: Client, start_worker) -> None:
    start_worker("--pool", "thread", "--concurrency", "1", "--prefetch", "2")
    warm_up(client)
    long_id = client.enqueue("record", kwargs={"sleep": 2.0}).id
    next_id = client.enqueue("record").id
    victim = client.enqueue("record").id
    wait_until(lambda: len(runs(client)) >= 1 and client.queue_depth("default").in_flight == 3)
    assert client.cancel(victim) == "requested"  # leased, so a running-task cancel request
    wait_until(lambda: client.get_task(victim).status == TaskStatus.CANCELLED, timeout=1.5)
    assert client.get_task(long_id).status == TaskStatus.RUNNING  # cancelled while still waiting its turn
    wait_until(lambda: client.get_task(next_id).status == TaskStatus.SUCCESS, timeout=10)
    assert victim not in {task_id for task_id, _, _ in runs(client)}


def test_long_tasks_are_not_hoarded(client: Client, start_worker) -> None:
    """Tasks that run long switch prefetch off, so a second worker gets the waiting ones at once."""
    start_worker("--pool", "thread", "--concurrency", "1", "--prefetch", "3", "--worker-id", "first")
    ids = [client.enqueue("record", kwargs={"sleep": 4.0}).id for _ in range(3)]
    wait_until(lambda: len(runs(client)) >= 1)
    assert client.queue_depth("default").in_flight == 1  # nothing leased ahead of a long task
    start_worker("--pool", "thread", "--concurrency", "1", "--prefetch", "3", "--worker-id", "second")
    wait_until(lambda: client.get_task(ids[1]).status != TaskStatus.QUEUED, timeout=10)
    assert client.get_task(ids[1]).worker == "second"
