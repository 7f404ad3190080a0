"""Jobs and outcomes cross the pipe to child processes as JSON: the round trip must be lossless."""

from __future__ import annotations

import json

from jobqueue.broker.leases import Job, Outcome, OutcomeKind


def test_job_json_round_trip() -> None:
    job = Job("q.0123", 3, "add", "[1,2]", "{}", "q", "high", 30.0, 24.0, 5, 2, None)
    assert Job.from_json(json.loads(json.dumps(job.to_json()))) == job


def test_outcome_json_round_trip_keeps_the_kind() -> None:
    outcome = Outcome("q.0123", 3, OutcomeKind.TIMEOUT, error="TaskTimeout: x", retryable=True)
    data = json.loads(json.dumps(outcome.to_json()))
    assert data["kind"] == "timeout"
    assert Outcome.from_json(data) == outcome


def test_to_json_is_a_copy() -> None:
    job = Job("q.0123", 1, "add", "[]", "{}", "q", "medium", None, None, 0, 0, 60)
    data = job.to_json()
    data["token"] = 99
    assert job.token == 1
