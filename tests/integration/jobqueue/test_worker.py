"""End-to-end behaviour of real worker processes against a real Redis server."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from jq_testing import runs, wait_until

from jobqueue import Client, ResultTimeout, TaskCancelled, TaskFailed, TaskStatus
from jobqueue.models import WorkerState

pytestmark = pytest.mark.timeout(60)

StartWorker = Callable[..., object]


def test_result_round_trip_and_timing_fields(client: Client, start_worker: StartWorker) -> None:
    start_worker("--concurrency", "2")
    h = client.enqueue("add", [2, 3])
    assert h.result(timeout=20) == 5
    record = client.get_task(h.id)
    assert record.status == TaskStatus.SUCCESS and record.attempts == 1
    assert record.started_at is not None and record.completed_at is not None
    assert record.duration is not None and 0 <= record.duration < 5
    assert client.result_exists(h.id)
    client.extend_result(h.id, 999_999)
    assert client.result_ttl(h.id) > 86_400  # type: ignore[operator]
    client.delete_result(h.id)
    assert not client.result_exists(h.id)


def test_result_wait_times_out(client: Client) -> None:
    h = client.enqueue("add", [1, 1])  # no worker
    start = time.monotonic()
    with pytest.raises(ResultTimeout):
        h.result(timeout=0.3)
    assert time.monotonic() - start < 2


def test_retries_then_success_keeps_history(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    h = client.enqueue("fail_times", [2], max_retries=3)
    assert h.result(timeout=20) == 3
    record = client.get_task(h.id)
    assert record.retries == 2
    history = record.retry_history
    assert [e["attempt"] for e in history] == [1, 2]
    assert history[0]["error"].startswith("OSError: attempt 1 fails")
    assert "Traceback" in history[0]["traceback"]
    assert history[0]["backoff_seconds"] is not None


def test_retry_on_limits_which_errors_are_retried(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    retried = client.enqueue("fail_with", ["os"], max_retries=2)
    not_retried = client.enqueue("fail_with", ["value"], max_retries=2)
    with pytest.raises(TaskFailed):
        retried.result(timeout=20)
    with pytest.raises(TaskFailed) as info:
        not_retried.result(timeout=20)
    assert "ValueError" in (info.value.error or "")
    assert client.get_task(retried.id).retries == 2
    record = client.get_task(not_retried.id)
    assert (record.retries, record.dead_letter_reason) == (0, "not_retryable")
    assert client.dead_letter_stats("default").total == 2


def test_hard_timeout_kills_process_and_worker_carries_on(client: Client, start_worker: StartWorker) -> None:
    start_worker("--concurrency", "1")
    slow = client.enqueue("stubborn", [30], timeout=0.5)
    with pytest.raises(TaskFailed) as info:
        slow.result(timeout=20)
    assert info.value.status == "TIMEOUT"
    assert "TaskTimeout" in (info.value.error or "")
    assert client.get_task(slow.id).dead_letter_reason == "timeout"
    # The replaced process serves the next task.
    assert client.enqueue("add", [1, 1]).result(timeout=20) == 2


def test_soft_timeout_raises_inside_the_task(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    h = client.enqueue("soft", [3], timeout=5, soft_timeout=0.3)
    assert h.result(timeout=20) == "cleaned up after soft timeout"


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_graceful_cancel_of_running_task(client: Client, start_worker: StartWorker, pool: str) -> None:
    start_worker("--pool", pool)
    h = client.enqueue("cancellable", [20])
    # Its code runs (RUNNING alone is set at lease: a cancel then can reach the child before the task
    # starts, which ends it CANCELLED without running it, as it should).
    wait_until(lambda: client.get_task(h.id).progress is not None, timeout=20)
    assert client.cancel(h.id) == "requested"
    # The task saw is_cancelled() and returned; a graceful cancel lets it finish its way.
    assert h.result(timeout=10) == "saw cancel"


def test_force_cancel_kills_running_task(client: Client, start_worker: StartWorker) -> None:
    start_worker("--concurrency", "1")
    h = client.enqueue("sleepy", [30], timeout=60)
    wait_until(lambda: client.get_task(h.id).status == TaskStatus.RUNNING, timeout=20)
    started = time.monotonic()
    assert client.cancel(h.id, force=True, reason="user_requested") == "requested"
    with pytest.raises(TaskCancelled) as info:
        h.result(timeout=10)
    assert info.value.reason == "user_requested"
    assert time.monotonic() - started < 5
    assert client.enqueue("add", [2, 2]).result(timeout=20) == 4


def test_cancel_pending_and_delayed(client: Client) -> None:
    h = client.enqueue("add", [1, 1], countdown=30)
    assert client.cancel(h.id, reason="other") == "cancelled"
    with pytest.raises(TaskCancelled):
        h.result(timeout=1)


def test_crashed_process_is_replaced_and_task_dead_lettered(
    client: Client, start_worker: StartWorker
) -> None:
    start_worker("--concurrency", "1")
    h = client.enqueue("crash")
    with pytest.raises(TaskFailed) as info:
        h.result(timeout=20)
    assert "WorkerCrashed" in (info.value.error or "")
    assert client.enqueue("add", [3, 3]).result(timeout=20) == 6


def test_unknown_task_and_malformed_messages_are_dead_lettered(
    client: Client, start_worker: StartWorker
) -> None:
    start_worker()
    unknown = client.enqueue("no_such_task", max_retries=5)
    with pytest.raises(TaskFailed):
        unknown.result(timeout=20)
    assert client.get_task(unknown.id).dead_letter_reason == "unknown_task"
    bad = client.enqueue("add", [1, 2])
    client.cancel(bad.id)  # take it out of the ready list to corrupt it safely
    key = client.queue_keys("default").task(bad.id)
    client.redis.hset(key, mapping={"status": "QUEUED", "args": "{not json"})
    client.redis.rpush(client.queue_keys("default").ready("medium"), bad.id)
    with pytest.raises(TaskFailed):
        bad.result(timeout=20)
    assert client.get_task(bad.id).dead_letter_reason == "malformed"
    assert client.enqueue("add", [1, 2]).result(timeout=20) == 3


def test_result_that_is_not_json_fails_clearly(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    with pytest.raises(TaskFailed) as info:
        client.enqueue("not_json", max_retries=3).result(timeout=20)
    assert "result" in (info.value.error or "")


@pytest.mark.parametrize("pool", ["process", "thread", "async"])
def test_an_exception_whose_message_cannot_be_formatted_fails_its_task_and_nothing_else(
    client: Client, start_worker: StartWorker, pool: str
) -> None:
    worker = start_worker("--pool", pool, "--concurrency", "1")
    with pytest.raises(TaskFailed) as info:
        client.enqueue("unprintable", max_retries=1).result(timeout=30)
    record = client.get_task(info.value.task_id)
    # Retried like any failure (not a crash of the worker or its child), with the type and what happened.
    assert (record.status, record.attempts) == (TaskStatus.FAILED, 2), record.error
    assert record.error == "UnprintableError: <str() failed: RuntimeError>"
    assert "UnprintableError" in (record.traceback or "")
    assert client.enqueue("add", [1, 2]).result(timeout=20) == 3
    assert "Traceback" not in worker.log().replace(record.traceback or "", "")


@pytest.mark.parametrize("pool", ["thread", "async"])
def test_thread_and_async_pools(client: Client, start_worker: StartWorker, pool: str) -> None:
    start_worker("--pool", pool, "--concurrency", "4")
    assert client.enqueue("add", [1, 2]).result(timeout=20) == 3
    assert client.enqueue("async_add", [2, 2]).result(timeout=20) == 4
    with pytest.raises(TaskFailed) as info:
        client.enqueue("stubborn", [5], timeout=0.3).result(timeout=20)
    assert info.value.status == "TIMEOUT"


def test_delayed_tasks_start_on_time(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    client.enqueue("add", [0, 0]).result(timeout=20)  # worker is up and idle
    lateness = []
    for _ in range(5):
        h = client.enqueue("add", [1, 1], countdown=0.3)
        h.result(timeout=10)
        record = client.get_task(h.id)
        assert record.started_at is not None and record.eta is not None
        lateness.append(record.started_at - record.eta)
    assert max(lateness) < 0.1, lateness


def test_idle_worker_starts_new_task_within_milliseconds(client: Client, start_worker: StartWorker) -> None:
    start_worker()
    client.enqueue("add", [0, 0]).result(timeout=20)
    time.sleep(0.3)  # the worker is blocked on its wake-up key now
    waits = []
    for _ in range(20):
        h = client.enqueue("add", [1, 1])
        h.result(timeout=10)
        record = client.get_task(h.id)
        waits.append(record.started_at - record.enqueued_at)  # type: ignore[operator]
    waits.sort()
    assert waits[len(waits) // 2] < 0.02, waits


def test_worker_registers_heartbeats_and_deregisters(client: Client, start_worker: StartWorker) -> None:
    w = start_worker("--worker-id", "pod-abc")
    wait_until(lambda: any(x.id == "pod-abc" for x in client.list_workers()), timeout=20)
    info = next(x for x in client.list_workers() if x.id == "pod-abc")
    assert info.status in (WorkerState.IDLE, WorkerState.ACTIVE) and info.queues == ("default",)
    assert info.heartbeat_age < 5 and info.pid is not None and info.concurrency > 0
    assert w.terminate() == 0  # type: ignore[attr-defined]
    assert all(x.id != "pod-abc" for x in client.list_workers())


def test_drain_request_stops_worker_after_its_tasks(client: Client, start_worker: StartWorker) -> None:
    w = start_worker("--worker-id", "pod-drain")
    h = client.enqueue("record", [], {"sleep": 1.0})
    wait_until(lambda: client.get_task(h.id).status == TaskStatus.RUNNING, timeout=20)
    client.request_drain("pod-drain")
    assert w.process.wait(20) == 0  # type: ignore[attr-defined]
    assert client.get_task(h.id).status == TaskStatus.SUCCESS
    assert [r[1] for r in runs(client)] == ["start", "done"]


def test_a_held_drain_idles_the_worker_until_called_off(client: Client, start_worker: StartWorker) -> None:
    """The operator's drain (exit=False): finish the running task, fetch nothing, stay up reporting
    DRAINING; calling it off makes the worker fetch again; SIGTERM still ends it with exit 0."""
    w = start_worker("--worker-id", "pod-hold", "--concurrency", "1")
    first = client.enqueue("record", [], {"sleep": 1.0})
    wait_until(lambda: client.get_task(first.id).status == TaskStatus.RUNNING, timeout=20)
    client.request_drain("pod-hold", exit=False)

    def status() -> str:
        return next((x.status.value for x in client.list_workers() if x.id == "pod-hold"), "")

    wait_until(lambda: client.get_task(first.id).status == TaskStatus.SUCCESS, timeout=20)
    wait_until(lambda: status() == "DRAINING", timeout=20)
    waiting = client.enqueue("record", [], {"sleep": 0.0})
    time.sleep(3)  # several heartbeats and idle rechecks: a held worker leaves the task alone
    assert client.get_task(waiting.id).status == TaskStatus.QUEUED
    assert w.process.poll() is None  # type: ignore[attr-defined]
    assert status() == "DRAINING"

    client.cancel_drain("pod-hold")
    wait_until(lambda: client.get_task(waiting.id).status == TaskStatus.SUCCESS, timeout=20)
    wait_until(lambda: status() in {"IDLE", "ACTIVE"}, timeout=20)
    assert w.terminate() == 0  # type: ignore[attr-defined]
