"""``raise Retry(...)`` from a task: the exact countdown it asks for, counted against max_retries unless
count=False, whatever retry_on says; run by real worker processes (process and thread pools)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until

from jobqueue import Client, TaskRecord, TaskStatus

FINAL = {TaskStatus.SUCCESS, TaskStatus.FAILED}


def finished(client: Client, task_id: str) -> TaskRecord:
    wait_until(lambda: client.get_task(task_id).status in FINAL, timeout=60)
    return client.get_task(task_id)


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_the_countdown_asked_for_is_honoured_and_counted(
    pool: str, client: Client, start_worker: Callable[..., Any]
) -> None:
    start_worker("--pool", pool, "--concurrency", "1")
    # max_retries=1: one counted retry is allowed, so the second attempt runs and succeeds.
    handle = client.enqueue("retry_later", [1, 0.4], max_retries=1)
    record = finished(client, handle.id)
    assert (record.status, record.result, record.retries) == (TaskStatus.SUCCESS, 2, 1)
    entry = record.retry_history[0]
    assert entry["error"] == "Retry: busy on attempt 1"
    # Exact: not jittered, not scaled by the backoff policy (retry_on=(OSError,) does not apply either).
    assert entry["backoff_seconds"] == 0.4
    assert record.started_at is not None and record.started_at - entry["at"] >= 0.39


def test_a_counted_retry_obeys_max_retries(client: Client, start_worker: Callable[..., Any]) -> None:
    start_worker("--pool", "thread", "--concurrency", "1")
    handle = client.enqueue("retry_later", [10, 0], max_retries=2)
    record = finished(client, handle.id)
    assert (record.status, record.retries, record.attempts) == (TaskStatus.FAILED, 2, 3)
    assert record.dead_letter_reason == "max_retries_exceeded"
    assert record.error == "Retry: busy on attempt 3"


def test_an_uncounted_retry_ignores_max_retries(client: Client, start_worker: Callable[..., Any]) -> None:
    start_worker("--pool", "process", "--concurrency", "1")
    handle = client.enqueue("retry_later", [3, 0], {"count": False}, max_retries=0)
    record = finished(client, handle.id)
    assert (record.status, record.result, record.retries) == (TaskStatus.SUCCESS, 4, 0)
    assert [entry["error"] for entry in record.retry_history] == [
        f"Retry: busy on attempt {n}" for n in (1, 2, 3)
    ]


@pytest.mark.parametrize("countdown", [-1, 10**400])
def test_a_bad_countdown_fails_the_attempt_with_a_clear_error(
    countdown: float, client: Client, start_worker: Callable[..., Any]
) -> None:
    start_worker("--pool", "thread", "--concurrency", "1")
    handle = client.enqueue("retry_later", [1, countdown], max_retries=0)
    record = finished(client, handle.id)
    assert record.status == TaskStatus.FAILED
    assert record.error is not None and record.error.startswith(
        "ValidationError: countdown: must be between 0"
    )
