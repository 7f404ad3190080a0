import pytest

from jobqueue import ValidationError
from jobqueue.scaling import (
    QueueLoad,
    ScalingPolicy,
    choose_workers_to_drain,
    deletion_costs,
    desired_replicas,
    rate_limit_replicas,
    stale_workers,
)

POLICY = ScalingPolicy(min_replicas=1, max_replicas=10, target_per_replica=10, max_step=4,
                       scale_up_cooldown_seconds=15, scale_down_cooldown_seconds=120)  # fmt: skip


@pytest.mark.parametrize(
    ("ready", "in_flight", "current", "expected"),
    [
        (0, 0, 1, 1),  # min holds
        (25, 5, 1, 3),  # ceil(30 / 10)
        (500, 0, 1, 5),  # wants 10, one step of at most 4
        (500, 0, 8, 10),  # clamped at max
        (0, 12, 5, 2),  # scale down toward ceil(12 / 10)
    ],
)
def test_desired_replicas(ready: int, in_flight: int, current: int, expected: int) -> None:
    decision = desired_replicas(POLICY, QueueLoad(ready, in_flight), current, seconds_since_last_scale=None)
    assert decision.desired == expected, decision.reason


def test_cooldowns_per_direction() -> None:
    up = desired_replicas(POLICY, QueueLoad(100, 0), 2, seconds_since_last_scale=10)
    assert up.desired == 2 and "cooldown" in up.reason
    assert desired_replicas(POLICY, QueueLoad(100, 0), 2, seconds_since_last_scale=16).desired == 6
    down = desired_replicas(POLICY, QueueLoad(0, 0), 5, seconds_since_last_scale=60)
    assert down.desired == 5
    assert desired_replicas(POLICY, QueueLoad(0, 0), 5, seconds_since_last_scale=121).desired == 1


def test_rate_limit_caps_useless_replicas() -> None:
    cap = rate_limit_replicas(rate_limit_per_second=2, average_task_seconds=1.0, concurrency_per_replica=1)
    assert cap == 2
    decision = desired_replicas(POLICY, QueueLoad(1000, 0, rate_limit_replicas=cap), 1, None)
    assert decision.desired == 2 and "rate limit" in decision.reason


def test_scale_to_zero_needs_activation_depth() -> None:
    policy = ScalingPolicy(min_replicas=0, max_replicas=5, activation_depth=5)
    assert desired_replicas(policy, QueueLoad(4, 0), 0, None).desired == 0
    assert desired_replicas(policy, QueueLoad(5, 0), 0, None).desired == 1


def test_policy_validation_names_fields() -> None:
    with pytest.raises(ValidationError) as info:
        ScalingPolicy(min_replicas=5, max_replicas=2)
    assert info.value.field == "max_replicas"


def test_idle_workers_are_drained_first() -> None:
    assert choose_workers_to_drain({"a": 3, "b": 0, "c": 1, "d": 0}, 3) == ["b", "d", "c"]
    assert deletion_costs(["a", "b"], {"a": 2}) == {"a": 200, "b": 0}


def test_stale_workers() -> None:
    assert stale_workers({"a": 3.0, "b": 61.0, "c": 120.0}, 60) == ["b", "c"]
