"""The process pool replaces a child between tasks after max_tasks_per_child tasks, or after a task that
left it above max_memory_per_child_mb; real worker and child processes on a real Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jobqueue import Client, TaskStatus

StartWorker = Callable[..., Any]
APP = ("--app", "jq_recycle_app:app")


def pids_of(client: Client, count: int) -> list[int]:
    """Run ``count`` pid tasks one after another (one child, so each sees the previous one's outcome)."""
    return [client.enqueue("pid").result(timeout=30) for _ in range(count)]


@pytest.mark.timeout(120)
def test_a_child_is_replaced_after_max_tasks_per_child(client: Client, start_worker: StartWorker) -> None:
    start_worker(*APP, "--concurrency", "1", "--max-tasks-per-child", "3")
    pids = pids_of(client, 7)
    # Tasks 1-3 in the first child, 4-6 in the second, 7 in the third.
    assert len(set(pids[0:3])) == 1
    assert len(set(pids[3:6])) == 1
    assert len({pids[0], pids[3], pids[6]}) == 3


@pytest.mark.timeout(120)
def test_many_tasks_through_recycled_children_are_all_done_once(
    client: Client, start_worker: StartWorker
) -> None:
    """Nothing is lost or run twice while children are replaced under a queue of concurrent work."""
    start_worker(*APP, "--concurrency", "2", "--max-tasks-per-child", "2")
    handles = [client.enqueue("pid") for _ in range(30)]
    pids = [h.result(timeout=60) for h in handles]
    for h in handles:
        record = client.get_task(h.id)
        assert (record.status, record.attempts, record.lost_leases) == (TaskStatus.SUCCESS, 1, 0)
    # 30 tasks at 2 per child: 15 children at least (a child never runs a third task).
    assert all(pids.count(p) <= 2 for p in pids)
    assert len(set(pids)) >= 15


@pytest.mark.timeout(120)
def test_a_child_is_replaced_after_a_task_leaves_it_over_max_memory(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker(*APP, "--concurrency", "1", "--max-memory-per-child-mb", "150")
    first = pids_of(client, 3)
    assert len(set(first)) == 1  # a fresh child is far below 150 MiB: kept
    holder = client.enqueue("hold", [40]).result(timeout=30)
    assert holder == first[0]  # still below the limit after 40 MiB: kept
    holder = client.enqueue("hold", [160]).result(timeout=30)
    assert holder == first[0]  # the task that grew it completes in it...
    after = pids_of(client, 2)
    assert after[0] == after[1] != holder  # ...and the next runs in a fresh child
    assert "resident memory" in worker.log()


def test_the_limits_are_refused_for_a_pool_without_children(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker(*APP, "--pool", "thread", "--max-tasks-per-child", "3")
    assert worker.process.wait(30) != 0
    assert "max-tasks-per-child" in worker.log()
