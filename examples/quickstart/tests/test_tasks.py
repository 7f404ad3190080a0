"""Tests of tasks.py, written only against the jobqueue pytest plugin (docs/testing.md).

The plugin starts one private redis-server for the session and empties it before each test; the
``jobqueue_app`` fixture is tasks.app pointed at it, with retry backoff scaled to zero.
"""

from __future__ import annotations

import redis
import tasks

from jobqueue import App, TaskStatus, chain


def test_a_task_is_still_a_plain_function() -> None:
    assert tasks.add(2, 3) == 5


def test_enqueued_tasks_run_on_the_real_worker_code(jobqueue_app: App, run_until_idle) -> None:
    handles = [tasks.add.enqueue(i, i) for i in range(10)]
    summary = run_until_idle()
    assert summary.succeeded == 10 and summary.exit_code == 0
    assert [h.result(timeout=1) for h in handles] == [2 * i for i in range(10)]


def test_retries_run_at_once_in_tests(jobqueue_app: App, run_until_idle) -> None:
    handle = tasks.send_receipt.enqueue(42, outage_attempts=2)
    summary = run_until_idle()
    assert handle.result(timeout=1) == "receipt for order 42 sent"
    assert summary.retried == 2


def test_a_failed_task_is_reported(jobqueue_app: App, run_until_idle) -> None:
    handle = tasks.reject_order.enqueue(7)
    summary = run_until_idle(queues=["email"])
    assert summary.failed_ids == (handle.id,)
    assert summary.exit_code == 1
    record = jobqueue_app.client.get_task(handle.id)
    assert record.status == TaskStatus.FAILED
    assert "cannot be processed" in (record.error or "")


def test_a_workflow_runs_to_its_end(jobqueue_app: App, run_until_idle) -> None:
    flow = chain(tasks.add.s(1, 2), tasks.add.s(10), tasks.add.s(100)).apply(jobqueue_app)
    run_until_idle()
    assert flow.result(timeout=1) == 113


def test_each_test_starts_from_an_empty_redis(jobqueue_redis_url: str) -> None:
    client = redis.Redis.from_url(jobqueue_redis_url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()
