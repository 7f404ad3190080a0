"""The operator's pure decisions: replicas, drain choice, staleness."""

from __future__ import annotations

from typing import Any

import pytest

from jobqueue_operator.decisions import (
    DRAINED_POD_DELETION_COST,
    POD_DELETION_COST_ANNOTATION,
    Cooldowns,
    ScaleReason,
    Worker,
    choose_workers_to_drain,
    deletion_cost_annotations,
    desired_replicas,
    drained_workers,
    orphaned_workers,
    stale_workers,
)

NOW = 1_000_000.0


def decide(**overrides: Any) -> tuple[int, int, ScaleReason]:
    args: dict[str, Any] = {
        "ready": 0,
        "in_flight": 0,
        "target_per_replica": 10,
        "min_replicas": 1,
        "max_replicas": 20,
        "current": 1,
        "last_scale_time": None,
        "now": NOW,
        "cooldowns": Cooldowns(scale_up=30, scale_down=300),
        "max_step": 4,
    }
    args.update(overrides)
    d = desired_replicas(**args)
    return d.replicas, d.target, d.reason


def test_backlog_divided_by_target_rounded_up_and_stepped() -> None:
    assert decide(ready=95, in_flight=10, current=1) == (5, 11, ScaleReason.SCALE_UP)
    assert decide(ready=95, in_flight=10, current=5) == (9, 11, ScaleReason.SCALE_UP)
    assert decide(ready=95, in_flight=10, current=9) == (11, 11, ScaleReason.SCALE_UP)
    assert decide(ready=95, in_flight=10, current=11) == (11, 11, ScaleReason.STEADY)


def test_target_is_clamped_to_min_and_max() -> None:
    assert decide(ready=10_000, current=20) == (20, 20, ScaleReason.STEADY)
    assert decide(ready=0, in_flight=0, current=1) == (1, 1, ScaleReason.STEADY)
    assert decide(ready=0, min_replicas=3, current=3) == (3, 3, ScaleReason.STEADY)


def test_a_pool_outside_new_bounds_is_brought_inside_at_once() -> None:
    recent = NOW - 1
    assert decide(current=25, ready=1000, last_scale_time=recent) == (20, 20, ScaleReason.OUT_OF_BOUNDS)
    assert decide(current=0, min_replicas=2, last_scale_time=recent) == (2, 2, ScaleReason.OUT_OF_BOUNDS)


def test_cooldowns_hold_each_direction_separately() -> None:
    up = decide(ready=100, current=2, last_scale_time=NOW - 10)
    assert up == (2, 10, ScaleReason.SCALE_UP_COOLDOWN)
    assert decide(ready=100, current=2, last_scale_time=NOW - 31)[0] == 6
    down = decide(ready=0, current=8, last_scale_time=NOW - 100)
    assert down == (8, 1, ScaleReason.SCALE_DOWN_COOLDOWN)
    assert decide(ready=0, current=8, last_scale_time=NOW - 301) == (4, 1, ScaleReason.SCALE_DOWN)


def test_work_held_back_by_a_rate_limit_does_not_add_workers() -> None:
    # 1000 ready, but the rate limit lets only 30 start before the next decision.
    assert decide(ready=1000, in_flight=20, current=1, rate_limit_capacity=30) == (5, 5, ScaleReason.SCALE_UP)
    assert decide(ready=1000, in_flight=20, current=1, rate_limit_capacity=None)[1] == 20


def test_scale_from_zero_waits_for_the_activation_depth() -> None:
    assert decide(min_replicas=0, current=0, ready=5, activation_depth=5) == (0, 0, ScaleReason.STEADY)
    assert decide(min_replicas=0, current=0, ready=6, activation_depth=5) == (1, 1, ScaleReason.SCALE_UP)
    # A running pool is not scaled to zero by the activation depth, only by an empty backlog.
    assert decide(min_replicas=0, current=1, ready=3, activation_depth=5) == (1, 1, ScaleReason.STEADY)
    assert decide(min_replicas=0, current=1, ready=0, last_scale_time=NOW - 301)[0] == 0


def test_an_invalid_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid autoscaling policy"):
        decide(min_replicas=5, max_replicas=2)
    with pytest.raises(ValueError, match="invalid autoscaling policy"):
        decide(target_per_replica=0)


def test_drain_prefers_draining_then_unready_then_idle_then_youngest() -> None:
    workers = [
        Worker("busy", in_flight=3, created_at=1),
        Worker("idle-old", in_flight=0, created_at=1),
        Worker("idle-young", in_flight=0, created_at=5),
        Worker("unready", in_flight=1, pod_ready=False, created_at=1),
        Worker("draining", in_flight=2, draining=True, created_at=1),
    ]
    assert choose_workers_to_drain(workers, 4) == ["draining", "unready", "idle-young", "idle-old"]
    assert choose_workers_to_drain(workers, 0) == []
    assert choose_workers_to_drain(workers, 10)[-1] == "busy"


def test_only_idle_draining_workers_are_safe_to_remove() -> None:
    workers = [
        Worker("a", in_flight=0, draining=True),
        Worker("b", in_flight=1, draining=True),
        Worker("c", in_flight=0, draining=False),
    ]
    assert drained_workers(workers, ["a", "b", "c"]) == ["a"]
    assert drained_workers(workers, ["b"]) == []


def test_deletion_cost_marks_chosen_pods_as_first_to_go() -> None:
    assert deletion_cost_annotations(["a"]) == {
        "a": {POD_DELETION_COST_ANNOTATION: str(DRAINED_POD_DELETION_COST)}
    }
    assert DRAINED_POD_DELETION_COST == -2147483648


def test_stale_workers() -> None:
    running = {"fresh": NOW - 500, "silent": NOW - 500, "booting": NOW - 10, "never": NOW - 100}
    beats = {"fresh": NOW - 5, "silent": NOW - 61, "booting": NOW - 1000}
    assert stale_workers(running, beats, NOW, stale_after=60) == ["never", "silent"]


def test_orphaned_workers_have_leases_but_no_pod_and_no_recent_heartbeat() -> None:
    holders = ["gone", "gone-recent", "alive", "gone-never-beat"]
    beats = {"gone": NOW - 200, "gone-recent": NOW - 10, "alive": NOW - 500}
    assert orphaned_workers(holders, beats, pods=["alive"], now=NOW, orphan_after=120) == [
        "gone",
        "gone-never-beat",
    ]


def test_invariants_over_a_grid_of_inputs() -> None:
    """Whatever the load: within bounds, toward the target, no overshoot, at most max_step per move."""
    cooldowns = Cooldowns(scale_up=30, scale_down=300)
    for ready in (0, 1, 9, 10, 11, 99, 1000):
        for in_flight in (0, 5, 40):
            for current in range(0, 13):
                for last in (None, NOW - 5, NOW - 100, NOW - 1000):
                    d = desired_replicas(
                        ready=ready, in_flight=in_flight, target_per_replica=10, min_replicas=1,
                        max_replicas=12, current=current, last_scale_time=last, now=NOW,
                        cooldowns=cooldowns, max_step=3,
                    )  # fmt: skip
                    assert 1 <= d.replicas <= 12 and 1 <= d.target <= 12
                    if d.reason is not ScaleReason.OUT_OF_BOUNDS:
                        assert abs(d.replicas - current) <= 3
                        low, high = sorted((current, d.target))
                        assert low <= d.replicas <= high
