"""The local supervisor's pure decision of which workers to kill: hung serving workers are replaced,
workers under drain are left to exit on their own until their deadline."""

from jobqueue.services.supervisor import HealthChecks, check_workers


def check(
    serving: dict[str, float], drains: dict[str, float], heartbeats: dict[str, float], now: float
) -> HealthChecks:
    return check_workers(serving, drains, heartbeats, now, stale_after=10, drain_timeout=90)


def test_serving_worker_that_stopped_heartbeating_is_replaced() -> None:
    assert check({"a": 0.0, "b": 0.0}, {}, {"a": 95.0, "b": 89.0}, now=100.0) == HealthChecks(
        replace=["b"], kill_overdue=[]
    )


def test_serving_worker_that_never_heartbeated_gets_the_threshold_to_boot() -> None:
    assert check({"a": 92.0}, {}, {}, now=100.0).replace == []
    assert check({"a": 89.0}, {}, {}, now=100.0).replace == ["a"]


def test_draining_worker_that_deregistered_and_is_still_exiting_is_left_alone() -> None:
    """The flake of test_scales_up_with_backlog_and_down_by_draining: a drained worker deregisters (no
    heartbeat left) seconds before its process exits on a loaded machine. Judged by its start time it
    looked hung, was killed and replaced, and the replacement undid the scale-down."""
    assert check({}, {"old": 50.0}, {}, now=100.0) == HealthChecks(replace=[], kill_overdue=[])


def test_draining_worker_with_an_old_heartbeat_is_not_replaced() -> None:
    # Its heartbeat thread stops once its last task is acked; the pool's stop comes after.
    assert check({}, {"w": 80.0}, {"w": 81.0}, now=100.0) == HealthChecks(replace=[], kill_overdue=[])


def test_drain_past_its_deadline_is_killed_without_replacement() -> None:
    checks = check({"serving": 0.0}, {"slow": 9.0, "fresh": 50.0}, {"serving": 99.0}, now=100.0)
    assert checks == HealthChecks(replace=[], kill_overdue=["slow"])
