"""Force cancel ends a task CANCELLED for good (issue 15, defects 7 and 8), on a real Redis with real
worker processes."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import runs, wait_until

from jobqueue import Client, Settings, TaskCancelled, TaskStatus
from jobqueue.broker.completion import CompletionCode, parse_completion
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.leases import Outcome, OutcomeKind, build_fetch, build_release, parse_fetch
from jobqueue.broker.redis_io import run_script
from jobqueue.retry import RetryPolicy

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


@pytest.mark.timeout(60)
def test_a_force_cancel_survives_the_death_of_the_tasks_worker(
    client: Client, start_worker: StartWorker
) -> None:
    """Defect 8: a cancel requested while the task's worker could not act on it (here: frozen, then
    killed) was forgotten when the lease was recovered: the task was requeued and ran again."""
    doomed = start_worker("--concurrency", "1", "--worker-id", "doomed")
    h = client.enqueue("record", [], {"sleep": 30.0})
    wait_until(lambda: starts(client, h.id) == 1, timeout=20)
    doomed.signal_group(signal.SIGSTOP)
    assert client.cancel(h.id, force=True, reason="user_requested") == "requested"
    doomed.signal_group(signal.SIGKILL)
    start_worker("--concurrency", "1", "--worker-id", "survivor")  # also recovers expired leases
    with pytest.raises(TaskCancelled) as info:
        h.result(timeout=20)
    assert info.value.reason == "user_requested"
    record = client.get_task(h.id)
    assert (record.status, record.lost_leases) == (TaskStatus.CANCELLED, 1)
    time.sleep(1.0)
    assert starts(client, h.id) == 1  # never run again
    assert client.enqueue("add", [1, 1]).result(timeout=20) == 2


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["force", "graceful"])
def test_recover_cancels_a_task_flagged_for_cancel_instead_of_requeueing_it(
    settings: Settings, mode: str
) -> None:
    """recover.lua, one script call: the flagged task ends CANCELLED (counted, event written, waiters told),
    the unflagged one is requeued as before."""
    client = Client(settings)
    keys = client.queue_keys("default")
    flagged, other = client.enqueue("a"), client.enqueue("b")
    fetched = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 2, "w1"))
    )
    assert {job.id for job in fetched.jobs} == {flagged.id, other.id}
    assert client.cancel(flagged.id, force=mode == "force", reason="user_requested") == "requested"
    assert client.recover_expired_leases(["default"], worker_id="w1") == {"requeued": 1, "dead_lettered": 0}
    record = client.get_task(flagged.id)
    assert (record.status, record.cancel_reason, record.worker) == (
        TaskStatus.CANCELLED,
        "user_requested",
        None,
    )
    assert client.redis.hget(keys.task(flagged.id), "cancel_requested") is None
    assert client.redis.ttl(keys.task(flagged.id)) > 0  # a finished record expires like any cancelled one
    assert client.get_task(other.id).status == TaskStatus.QUEUED
    assert int(client.redis.hget(keys.stats, "cancelled") or 0) == 1
    events = [fields["event"] for _, fields in client.redis.xrange(keys.events)]
    assert events.count("cancelled") == 1 and events.count("lease_lost") == 1
    with pytest.raises(TaskCancelled):
        flagged.result(timeout=1)
    # Idempotent: nothing is leased any more.
    assert client.recover_expired_leases(["default"], worker_id="w1") == {"requeued": 0, "dead_lettered": 0}
    client.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["force", "graceful"])
def test_release_of_a_task_flagged_for_cancel_ends_it_cancelled_instead_of_running_it_again(
    settings: Settings, mode: str
) -> None:
    """release.lua (a draining worker hands back what it did not finish): like recover.lua, a task whose
    cancel was requested ends CANCELLED; before, it was queued again and the next worker started it anew.
    Found while modelling release for the state machine (test_transition_model.py)."""
    client = Client(settings)
    keys = client.queue_keys("default")
    flagged, other = client.enqueue("a"), client.enqueue("b")
    jobs = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 2, "w1"))
    ).jobs
    assert client.cancel(flagged.id, force=mode == "force", reason="user_requested") == "requested"
    replies = [
        parse_completion(run_script(client.redis, build_release(client.settings, job, worker_id="w1")))
        for job in jobs
    ]
    codes = {job.id: reply for job, reply in zip(jobs, replies, strict=True)}
    assert codes == {flagged.id: [CompletionCode.FINISHED], other.id: [CompletionCode.RELEASED]}
    record = client.get_task(flagged.id)
    assert (record.status, record.cancel_reason, record.worker) == (
        TaskStatus.CANCELLED,
        "user_requested",
        None,
    )
    assert client.redis.hget(keys.task(flagged.id), "cancel_requested") is None
    assert client.redis.ttl(keys.task(flagged.id)) > 0
    assert int(client.redis.hget(keys.stats, "cancelled") or 0) == 1
    assert client.redis.smembers(keys.held("w1")) == set()
    with pytest.raises(TaskCancelled):
        flagged.result(timeout=1)
    # Only the other task runs again.
    fetched = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 2, "w2"))
    )
    assert [job.id for job in fetched.jobs] == [other.id]
    client.close()


@pytest.mark.timeout(30)
def test_a_task_cancelled_while_it_ran_expires_like_every_finished_record(settings: Settings) -> None:
    """fail.lua with final status CANCELLED (the worker stopped the task on a cancel request) left the
    record without a TTL, in Redis for good; cancel.lua and recover.lua expire theirs. Found while modelling
    fail.lua for the state machine (test_transition_model.py), which now checks every record's TTL."""
    client = Client(settings)
    keys = client.queue_keys("default")
    h = client.enqueue("a", result_ttl=120)
    [job] = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
    ).jobs
    outcome = Outcome(job.id, job.token, OutcomeKind.CANCELLED, error="TaskCancelled: user_requested")
    call = build_completion(client.settings, job, outcome, None, worker_id="w1")
    assert parse_completion(run_script(client.redis, call)) == [CompletionCode.FINISHED]
    assert client.get_task(h.id).status == TaskStatus.CANCELLED
    assert 0 < client.redis.ttl(keys.task(h.id)) <= 120  # the task's own result TTL
    client.close()


@pytest.mark.timeout(30)
def test_a_failed_attempt_of_a_task_flagged_for_cancel_is_not_retried(settings: Settings) -> None:
    """fail.lua: an attempt that raised a retryable error after its cancel was requested scheduled a
    retry, so the cancelled task ran again until its next heartbeat stopped it; it now ends CANCELLED,
    as recover.lua and release.lua end such a task. Found while modelling fail.lua for the state machine."""
    client = Client(settings)
    h = client.enqueue("a", max_retries=3)
    [job] = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
    ).jobs
    assert client.cancel(h.id, reason="user_requested") == "requested"
    outcome = Outcome(job.id, job.token, OutcomeKind.ERROR, error="OSError: interrupted", retryable=True)
    call = build_completion(client.settings, job, outcome, RetryPolicy("constant", 0.0, 0.0), worker_id="w1")
    assert parse_completion(run_script(client.redis, call)) == [CompletionCode.FINISHED]
    record = client.get_task(h.id)
    assert (record.status, record.retries, record.cancel_reason) == (
        TaskStatus.CANCELLED,
        0,
        "user_requested",
    )
    assert client.redis.hget(client.queue_keys("default").task(h.id), "cancel_requested") is None
    assert (
        parse_fetch(
            "default", run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
        ).jobs
        == []
    )
    # Without a cancel request the same failure is retried, as before.
    other = client.enqueue("b", max_retries=3)
    [job] = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
    ).jobs
    outcome = Outcome(job.id, job.token, OutcomeKind.ERROR, error="OSError: interrupted", retryable=True)
    call = build_completion(client.settings, job, outcome, RetryPolicy("constant", 0.0, 0.0), worker_id="w1")
    assert parse_completion(run_script(client.redis, call)) == [CompletionCode.RETRY_SCHEDULED]
    assert client.get_task(other.id).status == TaskStatus.RETRYING
    client.close()
