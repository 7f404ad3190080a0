"""The defaults a task gets when it sets no retry policy and no timeout, as settings, and how the worker
protocol carries them (the fail script's ARGV, the leased job's time limit)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from jobqueue import Settings
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.leases import Job, Outcome, OutcomeKind, parse_fetch
from jobqueue.retry import QUEUE_DEFAULT_RETRY

JOB = Job("t1", 1, "add", "[]", "{}", "default", "medium", None, None, 0, 0, None)
# One leased task as fetch.lua returns it: id, token, name, args, kwargs, priority, timeout, soft timeout, ...
FETCHED = [-1, -1, 1, "t1", "1", "add", "[]", "{}", "medium", "", "", "", "0", "", "", "", "5", ""]


def test_the_product_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JOBQUEUE_DEFAULT_MAX_RETRIES", "JOBQUEUE_DEFAULT_TIMEOUT", "JOBQUEUE_BACKOFF_SCALE"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert (settings.default_max_retries, settings.default_timeout, settings.backoff_scale) == (3, 300.0, 1.0)
    assert settings.effective_default_timeout == 300.0


def test_the_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_DEFAULT_MAX_RETRIES", "0")
    monkeypatch.setenv("JOBQUEUE_DEFAULT_TIMEOUT", "0")
    settings = Settings()
    assert settings.default_max_retries == 0
    assert settings.effective_default_timeout is None  # 0 = no limit


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("default_max_retries", -1),
        ("default_max_retries", 10**30),
        ("default_timeout", -0.5),
        ("default_timeout", float("nan")),
        ("default_timeout", float("inf")),
        ("backoff_scale", -1),
    ],
)
def test_out_of_range_defaults_are_refused_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_a_leased_task_without_a_timeout_gets_the_default() -> None:
    [job] = parse_fetch("default", FETCHED, 300.0).jobs
    assert job.timeout == 300.0
    [job] = parse_fetch("default", FETCHED).jobs
    assert job.timeout is None
    own = list(FETCHED)
    own[9] = "12.5"  # the task's own timeout wins
    [job] = parse_fetch("default", own, 300.0).jobs
    assert job.timeout == 12.5


def test_the_fail_call_carries_the_backoff_scale_and_the_default_retries() -> None:
    outcome = Outcome(JOB.id, 1, OutcomeKind.ERROR, error="OSError: x", retryable=True)
    call = build_completion(
        Settings(backoff_scale=0.0, default_max_retries=7), JOB, outcome, QUEUE_DEFAULT_RETRY, worker_id="w1"
    )
    assert call.args[12:14] == ("0.0", 7)
