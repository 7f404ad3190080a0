"""Task output is never refused (defect 2's storage side, defect 9): the acker's encoding is total."""

from __future__ import annotations

from jobqueue import Settings
from jobqueue.broker.completion_calls import build_completion, plan_completions, storable_outcome
from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.serialization import dumps

JOB = Job("q.0190a1b2c3d47e8f9a0b1c2d3e4f5a6b", 1, "t", "[]", "{}", "q", "medium", None, None, 3, 0, None)


def _encodable(call_args: tuple[object, ...]) -> None:
    for arg in call_args:
        if isinstance(arg, str):
            arg.encode("utf-8")  # what redis-py does with every argument


def test_a_lone_surrogate_in_an_error_is_escaped_not_raised() -> None:
    outcome = Outcome(JOB.id, 1, OutcomeKind.ERROR, error="ValueError: bad \udc80 byte", traceback="tb \x00")
    call = build_completion(Settings(), JOB, outcome, None, worker_id="w1")
    _encodable(call.args)
    assert "ValueError: bad \\udc80 byte" in call.args
    assert "tb \\u0000" in call.args


def test_a_result_with_nul_and_surrogates_is_stored_escaped() -> None:
    result = dumps({"path\udc80": "a\x00b"}, "result")
    plan = plan_completions(
        Settings(), [(JOB, Outcome.succeeded(JOB.id, 1, result))], lambda job: None, worker_id="w1"
    )
    (call,) = plan.calls
    assert call.script == "ack"
    _encodable(call.args)
    assert '{"path\\\\udc80":"a\\\\u0000b"}' in call.args


def test_a_result_over_the_limit_fails_the_attempt_without_retry() -> None:
    settings = Settings(max_result_bytes=1000)
    outcome = storable_outcome(settings, Outcome.succeeded(JOB.id, 1, dumps("é" * 600, "result")))
    assert outcome.kind == OutcomeKind.ERROR and not outcome.retryable
    assert outcome.error.startswith("ResultTooLarge: the task's result is 1202 bytes")
    big = Outcome.succeeded(JOB.id, 1, dumps("x" * 2000, "r"))
    plan = plan_completions(settings, [(JOB, big)], lambda j: None, worker_id="w1")
    assert plan.calls[0].script == "fail"


def test_error_text_is_cut_to_its_limit() -> None:
    settings = Settings(max_error_chars=10, max_traceback_chars=20)
    long = Outcome(JOB.id, 1, OutcomeKind.ERROR, error="e" * 50, traceback="t" * 50)
    outcome = storable_outcome(settings, long)
    assert (len(outcome.error), len(outcome.traceback)) == (10, 20)
