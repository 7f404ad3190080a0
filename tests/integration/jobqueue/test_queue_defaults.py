"""Per-queue retry defaults and lost-lease threshold, applied inside fail.lua and recover.lua (real Redis).

A task's own retry settings win; a task that left them out gets its queue's defaults as they are when it
fails; a queue without defaults gives the built-ins (no retry; exponential 1 s .. 300 s, jittered).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until

from jobqueue import Client, Settings, TaskStatus
from jobqueue.broker.completion import CompletionCode, parse_completion
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.leases import Job, Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.redis_io import run_script
from jobqueue.errors import ValidationError
from jobqueue.retry import QUEUE_DEFAULT_RETRY, QueueDefaultRetry, RetryPolicy

pytestmark = pytest.mark.timeout(30)


def fetch_one(client: Client, queue: str = "default") -> Job:
    reply = run_script(client.redis, build_fetch(client.settings, queue, 1, "w1"))
    [job] = parse_fetch(queue, reply).jobs
    return job


def fail(
    client: Client, job: Job, policy: RetryPolicy | QueueDefaultRetry | None, draw: float = 0.5
) -> CompletionCode:
    outcome = Outcome(job.id, job.token, OutcomeKind.ERROR, error="ValueError: boom", retryable=True)
    rng = random.Random()
    rng.random = lambda: draw  # type: ignore[method-assign]
    call = build_completion(client.settings, job, outcome, policy, rng, worker_id="w1")
    return parse_completion(run_script(client.redis, call))[0]


def last_backoff(client: Client, task_id: str) -> float:
    return float(client.get_task(task_id).retry_history[-1]["backoff_seconds"])


def test_a_task_without_max_retries_takes_the_queue_default_at_failure_time(client: Client) -> None:
    admin = QueueAdmin(client)
    task = client.enqueue("flaky").id
    assert client.get_task(task).max_retries is None
    # Set after the enqueue: defaults resolve when the task fails, not when it was enqueued.
    admin.set_retry_defaults("default", max_retries=2, backoff="constant", base_seconds=0, jitter=False)
    for _ in range(2):
        assert fail(client, fetch_one_due(client), QUEUE_DEFAULT_RETRY) == CompletionCode.RETRY_SCHEDULED
    assert fail(client, fetch_one_due(client), QUEUE_DEFAULT_RETRY) == CompletionCode.FINISHED
    record = client.get_task(task)
    assert (record.status, record.retries, record.dead_letter_reason) == (
        TaskStatus.FAILED,
        2,
        "max_retries_exceeded",
    )


def fetch_one_due(client: Client) -> Job:
    # A zero backoff puts the retry in the delayed set due now; fetch promotes due tasks first.
    deadline = time.monotonic() + 5
    while True:
        reply = run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
        jobs = parse_fetch("default", reply).jobs
        if jobs:
            return jobs[0]
        assert time.monotonic() < deadline, "the retry never became due"
        time.sleep(0.01)


def test_a_task_s_own_max_retries_wins_over_the_queue_default(client: Client) -> None:
    QueueAdmin(client).set_retry_defaults("default", max_retries=5)
    task = client.enqueue("strict", max_retries=0).id
    assert fail(client, fetch_one(client), QUEUE_DEFAULT_RETRY) == CompletionCode.FINISHED
    assert client.get_task(task).dead_letter_reason == "max_retries_exceeded"


def test_a_queue_without_defaults_does_not_retry_a_task_that_set_none(client: Client) -> None:
    client.enqueue("plain")
    assert fail(client, fetch_one(client), QUEUE_DEFAULT_RETRY) == CompletionCode.FINISHED


@pytest.mark.parametrize(
    ("backoff", "retries_before", "expected"),
    [
        ("exponential", 0, 2.0),
        ("exponential", 3, 16.0),
        ("linear", 2, 6.0),
        ("constant", 4, 2.0),
        ("fibonacci", 4, 10.0),  # fib(5) = 5 times 2 s
        ("exponential", 10, 60.0),  # capped
    ],
)
def test_the_queue_default_backoff_matches_the_python_policy(
    client: Client, backoff: str, retries_before: int, expected: float
) -> None:
    QueueAdmin(client).set_retry_defaults(
        "default", max_retries=20, backoff=backoff, base_seconds=2, max_seconds=60, jitter=False
    )
    task = client.enqueue("t").id
    client.redis.hset(client.queue_keys("default").task(task), "retries", retries_before)
    assert fail(client, fetch_one(client), QUEUE_DEFAULT_RETRY) == CompletionCode.RETRY_SCHEDULED
    assert last_backoff(client, task) == pytest.approx(expected)
    python = RetryPolicy(backoff, 2, 60, jitter=False).delay(retries_before + 1)
    assert last_backoff(client, task) == pytest.approx(python)


def test_queue_default_jitter_uses_the_worker_s_draw(client: Client) -> None:
    QueueAdmin(client).set_retry_defaults("default", max_retries=3, base_seconds=10, jitter=True)
    task = client.enqueue("t").id
    assert fail(client, fetch_one(client), QUEUE_DEFAULT_RETRY, draw=0.0) == CompletionCode.RETRY_SCHEDULED
    assert last_backoff(client, task) == pytest.approx(5.0)  # 50 % of 10 s, as RetryPolicy.delay


def test_a_task_s_own_backoff_wins_over_the_queue_default(client: Client) -> None:
    QueueAdmin(client).set_retry_defaults("default", max_retries=3, base_seconds=100, jitter=False)
    task = client.enqueue("t").id
    assert (
        fail(client, fetch_one(client), RetryPolicy("constant", 0.25, jitter=False))
        == CompletionCode.RETRY_SCHEDULED
    )
    assert last_backoff(client, task) == pytest.approx(0.25)


def test_max_lost_leases_is_per_queue(settings: Settings) -> None:
    s = settings.model_copy(update={"lease_seconds": 0.2, "max_lost_leases": 5})
    client = Client(s)
    admin = QueueAdmin(client)
    admin.set_max_lost_leases("strict", 0)
    strict = client.enqueue("a", queue="strict").id
    lenient = client.enqueue("a", queue="lenient").id
    fetch_one(client, "strict")
    fetch_one(client, "lenient")
    time.sleep(0.25)
    assert client.recover_expired_leases(["strict"]) == {"requeued": 0, "dead_lettered": 1}
    assert client.recover_expired_leases(["lenient"]) == {"requeued": 1, "dead_lettered": 0}
    assert client.get_task(strict).dead_letter_reason == "lease_lost_too_often"
    assert client.get_task(lenient).status == TaskStatus.QUEUED
    # Clearing the setting restores the process-wide threshold.
    assert admin.set_max_lost_leases("strict", None).max_lost_leases is None
    client.close()


def test_retry_defaults_round_trip_and_validation(client: Client) -> None:
    admin = QueueAdmin(client)
    assert admin.get_config("q").retry_defaults is None
    defaults = admin.set_retry_defaults("q", max_retries=4, backoff="linear", base_seconds=0.5, jitter=False)
    assert admin.get_config("q").retry_defaults == defaults
    assert (defaults.max_retries, defaults.backoff, defaults.base_seconds, defaults.max_seconds) == (
        4,
        "linear",
        0.5,
        300.0,
    )
    with pytest.raises(ValidationError) as bad:
        admin.set_retry_defaults("q", max_retries=-1)
    assert bad.value.field == "max_retries"
    with pytest.raises(ValidationError) as bad:
        admin.set_retry_defaults("q", max_retries=1, backoff="random")
    assert bad.value.field == "backoff"
    with pytest.raises(ValidationError) as bad:
        admin.set_max_lost_leases("q", 5000)
    assert bad.value.field == "max_lost_leases"
    assert admin.remove_retry_defaults("q").retry_defaults is None


@pytest.mark.timeout(60)
def test_a_real_worker_retries_by_the_queue_default(client: Client, start_worker: Callable[..., Any]) -> None:
    """End to end: ``add`` is defined without retry options, so its queue decides (and a TypeError is
    retryable under the default rule)."""
    QueueAdmin(client).set_retry_defaults(
        "default", max_retries=2, backoff="constant", base_seconds=0.05, jitter=False
    )
    task = client.enqueue("add", ["a", 1]).id
    start_worker("--concurrency", "1")
    wait_until(lambda: client.get_task(task).status == TaskStatus.FAILED, timeout=30)
    record = client.get_task(task)
    assert (record.retries, record.dead_letter_reason) == (2, "max_retries_exceeded")
    assert [h["backoff_seconds"] for h in record.retry_history] == [0.05, 0.05, None]
