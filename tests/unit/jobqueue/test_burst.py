"""Burst mode's pure parts: when idle queues end the run, and how recorded outcomes are tallied."""

from __future__ import annotations

import math

import pytest

from jobqueue.errors import ConfigurationError
from jobqueue.worker.burst import Burst, RunSummary
from jobqueue.worker.jobs import FetchReply, Job, Outcome, OutcomeKind


def job(task_id: str) -> Job:
    return Job(task_id, 1, "t", "[]", "{}", "default", "medium", None, None, 3, 0, None)


def outcome(task_id: str, kind: OutcomeKind) -> Outcome:
    return Outcome(task_id, 1, kind)


def test_idle_queues_end_the_run() -> None:
    burst = Burst()
    burst.begin_fetch()
    burst.observe(FetchReply([], -1, -1), 1.0)
    assert burst.idle_pause() is None


def test_a_rate_limited_queue_is_waited_for_as_flow_control_says() -> None:
    burst = Burst()
    burst.begin_fetch()
    burst.observe(FetchReply([], 250, -1), 1.0)
    burst.observe(FetchReply([], -3, -1), 1.0)  # max in-flight: re-check at the idle interval
    assert burst.idle_pause() == 0.25


def test_a_delayed_task_is_waited_for_only_within_the_burst_wait() -> None:
    burst = Burst(wait_seconds=2.0)
    burst.begin_fetch()
    burst.observe(FetchReply([], -1, 5_000), 1.0)
    assert burst.idle_pause() is None  # due after the burst wait: left for a later run
    burst.begin_fetch()
    burst.observe(FetchReply([], -1, 5_000), 1.0)
    burst.observe(FetchReply([], -1, 1_500), 1.0)
    pause = burst.idle_pause()
    assert pause is not None and 1.5 <= pause < 1.6


def test_a_paused_queue_does_not_hold_the_run() -> None:
    burst = Burst(wait_seconds=10.0)
    burst.begin_fetch()
    burst.observe(FetchReply([], -2, -1), 1.0)
    assert burst.idle_pause() is None


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_a_burst_wait_that_is_not_a_finite_duration_is_refused(bad: float) -> None:
    with pytest.raises(ConfigurationError):
        Burst(wait_seconds=bad)


def test_outcomes_are_tallied_by_the_status_they_leave() -> None:
    burst = Burst()
    batch = [
        (job("ok"), outcome("ok", OutcomeKind.SUCCESS)),
        (job("retried"), outcome("retried", OutcomeKind.ERROR)),
        (job("dead"), outcome("dead", OutcomeKind.ERROR)),
        (job("slow"), outcome("slow", OutcomeKind.TIMEOUT)),
        (job("stopped"), outcome("stopped", OutcomeKind.CANCELLED)),
        (job("crashed"), outcome("crashed", OutcomeKind.CRASHED)),
        (job("stale"), outcome("stale", OutcomeKind.SUCCESS)),
    ]
    # ack: 1 recorded; fail: 1 retry scheduled, 2 finished; either: 0 stale token.
    burst.record(batch, [1, 1, 2, 2, 2, 2, 0])
    summary = burst.summary()
    assert summary.counts == {"SUCCESS": 1, "FAILED": 2, "TIMEOUT": 1, "CANCELLED": 1}
    assert summary.failed_ids == ("dead", "slow", "crashed")
    assert (summary.retried, summary.lost, summary.failed, summary.exit_code) == (1, 1, 3, 1)


def test_a_run_with_no_failure_exits_zero_and_says_so_on_one_line() -> None:
    summary = RunSummary(counts={"SUCCESS": 3, "CANCELLED": 1}, retried=2, seconds=1.234)
    assert summary.exit_code == 0
    assert summary.line() == (
        "burst: 4 task(s) finished in 1.23s: 3 success, 0 failed, 0 timeout, 1 cancelled; "
        "2 retried, 0 lost lease(s)"
    )
    assert "\n" not in summary.line()
