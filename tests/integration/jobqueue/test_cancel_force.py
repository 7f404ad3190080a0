"""Force cancel ends a task CANCELLED for good (issue 15, defects 7 and 8), on a real Redis with real
worker processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import runs, wait_until

from jobqueue import Client, TaskCancelled, TaskStatus

StartWorker = Callable[..., Any]


def starts(client: Client, task_id: str) -> int:
    return sum(1 for tid, what, _ in runs(client) if tid == task_id and what == "start")


@pytest.mark.timeout(60)
def test_thread_pool_force_cancel_ends_cancelled_and_is_not_retried(
    client: Client, start_worker: StartWorker
) -> None:
    """Defect 7: the injected TaskCancelled class could not be built without arguments, so the task got a
    TypeError, counted as failed and was retried (``spin`` allows 2 retries)."""
    start_worker("--pool", "thread", "--concurrency", "1")
    h = client.enqueue("spin", [30.0])
    wait_until(lambda: starts(client, h.id) == 1, timeout=20)
    assert client.cancel(h.id, force=True, reason="user_requested") == "requested"
    with pytest.raises(TaskCancelled) as info:
        h.result(timeout=10)
    assert info.value.reason == "user_requested"
    record = client.get_task(h.id)
    assert (record.status, record.retries) == (TaskStatus.CANCELLED, 0)
    assert "TypeError" not in (record.error or "")
    time.sleep(0.5)  # a retry (backoff 0.05 s) would have started by now
    assert starts(client, h.id) == 1
    assert client.enqueue("add", [2, 2]).result(timeout=20) == 4  # the slot thread is still serving
