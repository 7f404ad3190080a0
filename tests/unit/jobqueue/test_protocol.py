"""The pure worker protocol: fetch replies in, fenced completion calls out."""

import dataclasses
import logging
import random

import pytest

from jobqueue import RetryPolicy, Settings
from jobqueue.broker.completion import CompletionCode, parse_completion
from jobqueue.broker.completion_calls import build_completion, plan_completions
from jobqueue.broker.leases import (
    Job,
    Outcome,
    OutcomeKind,
    log_stale_completion,
    parse_fetch,
    parse_heartbeat,
)
from jobqueue.retry import QUEUE_DEFAULT_RETRY

JOB = Job(
    "default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f", 3, "add", "[1]", "{}", "default", "high", 10.0, 8.0, 2, 1, 60
)


def test_parse_fetch() -> None:
    reply = [-1, 250, 1, JOB.id, 3, "add", "[1]", "{}", "high", "10.0", "8.0", "2", "1", "123", "0", "60", 42]
    reply.append("")  # no headers
    parsed = parse_fetch("default", reply)
    assert parsed.jobs == [JOB] and parsed.next_due_ms == 250 and parsed.wait_ms == -1
    assert parsed.queue_wait_ms == [42]
    # The message headers (the 15th value) are carried encoded, as the script returned them.
    reply[-1] = '{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}'
    assert parse_fetch("default", reply).jobs[0].headers_json == reply[-1]


def test_success_is_a_fenced_ack_with_the_tasks_result_ttl() -> None:
    call = build_completion(
        Settings(), JOB, Outcome(JOB.id, 3, OutcomeKind.SUCCESS, "2"), None, worker_id="w1"
    )
    assert call.script == "ack"
    assert call.args[2:6] == (JOB.id, 3, "2", 60)


def test_successes_of_a_batch_share_one_ack_call_per_queue() -> None:
    other = Job(
        "other.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f", 1, "add", "[]", "{}", "other", "low", None, None, 0, 0, None
    )
    batch = [
        (JOB, Outcome(JOB.id, 3, OutcomeKind.SUCCESS, "1")),
        (JOB, Outcome(JOB.id, 3, OutcomeKind.ERROR, error="x")),
        (other, Outcome(other.id, 1, OutcomeKind.SUCCESS, "2")),
        (JOB, Outcome(JOB.id, 4, OutcomeKind.SUCCESS, "3")),
    ]
    plan = plan_completions(Settings(), batch, lambda job: None, worker_id="w1")
    assert [c.script for c in plan.calls] == ["fail", "ack", "ack"]
    assert plan.slots == [(1, 0), (0, 0), (2, 0), (1, 1)]
    # every completion script replies with a list of codes, one per task
    assert plan.results([[2], [1, -2], [1]]) == [
        CompletionCode.SUCCEEDED,
        CompletionCode.RETRY_SCHEDULED,
        CompletionCode.SUCCEEDED,
        CompletionCode.FENCED,
    ]


def test_completion_codes_say_which_outcomes_are_stale() -> None:
    codes = parse_completion([1, 2, 3, 4, -1, -2, -3])
    assert [c.stale for c in codes] == [False] * 4 + [True] * 3
    with pytest.raises(ValueError):
        parse_completion([0])


def test_retryable_error_carries_backoff_from_the_policy() -> None:
    outcome = Outcome(JOB.id, 3, OutcomeKind.ERROR, error="OSError: x", retryable=True)
    call = build_completion(
        Settings(), JOB, outcome, RetryPolicy(jitter=False), random.Random(1), worker_id="w1"
    )
    assert call.script == "fail"
    # retries=1 so far: the next is retry #2 → 2 s exponential.
    assert call.args[4:7] == ("1", 2000, "FAILED")


def test_rejected_messages_are_never_retried() -> None:
    outcome = Outcome(
        JOB.id, 3, OutcomeKind.REJECTED, error="UnknownTask", retryable=True, reject_reason="unknown_task"
    )
    call = build_completion(Settings(), JOB, outcome, RetryPolicy(), worker_id="w1")
    assert call.args[4] == "0" and call.args[7] == "unknown_task"


def test_timeouts_and_cancels_have_their_final_status() -> None:
    for kind, status in ((OutcomeKind.TIMEOUT, "TIMEOUT"), (OutcomeKind.CANCELLED, "CANCELLED")):
        call = build_completion(Settings(), JOB, Outcome(JOB.id, 3, kind), RetryPolicy(), worker_id="w1")
        assert call.args[6] == status


def test_parse_heartbeat() -> None:
    assert parse_heartbeat(["a", "", "b", "force"]) == (["a"], {"b": "force"})
    assert parse_heartbeat([""]) == ([], {})


def test_a_task_without_its_own_backoff_leaves_the_delay_to_the_fail_script() -> None:
    outcome = Outcome(JOB.id, 3, OutcomeKind.ERROR, error="OSError: x", retryable=True)
    rng = random.Random(3)
    draw = random.Random(3).random()
    call = build_completion(Settings(), JOB, outcome, QUEUE_DEFAULT_RETRY, rng, worker_id="w1")
    # '' = compute from the queue's defaults inside fail.lua; the jitter draw travels in ARGV[12].
    assert call.args[4:6] == ("1", "")
    assert call.args[11] == draw


def test_an_unknown_task_is_not_retried_even_under_queue_defaults() -> None:
    outcome = Outcome(JOB.id, 3, OutcomeKind.ERROR, error="x", retryable=True)
    assert build_completion(Settings(), JOB, outcome, None, worker_id="w1").args[4:6] == ("0", 0)


def test_hot_path_constructors_build_the_same_frozen_values() -> None:
    # parse_fetch and Outcome.succeeded skip the dataclass __init__ for speed: same value, still frozen.
    reply = [-1, -1, 1, JOB.id, "3", "add", "[1]", "{}", "", "", "", "", "", "", "", "", "", ""]
    [job] = parse_fetch("default", reply).jobs
    assert job == Job(JOB.id, 3, "add", "[1]", "{}", "default", "medium", None, None, 0, 0, None)
    assert parse_fetch("default", reply).queue_wait_ms == [-1]
    outcome = Outcome.succeeded(JOB.id, 3, "7")
    assert outcome == Outcome(JOB.id, 3, OutcomeKind.SUCCESS, result_json="7")
    assert repr(outcome) == repr(Outcome(JOB.id, 3, OutcomeKind.SUCCESS, result_json="7"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.token = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.kind = OutcomeKind.ERROR  # type: ignore[misc]


def test_a_stale_completion_is_logged_with_its_task_queue_attempt_and_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobqueue.broker.leases"):
        log_stale_completion(JOB, "success", CompletionCode.SUCCEEDED)
        assert caplog.records == []
        log_stale_completion(JOB, "success", CompletionCode.FENCED)
    [record] = caplog.records
    assert (record.task_id, record.queue, record.attempt, record.stale) == (JOB.id, "default", 3, "fenced")  # type: ignore[attr-defined]
    assert "a newer attempt holds the task" in record.getMessage()
