"""The pure worker pool model: names, bounds, the manual-scale rule, and stored-JSON round trips."""

from __future__ import annotations

import pytest

from jobqueue.errors import ValidationError
from jobqueue.pools import PoolAutoscaling, PoolEvent, PoolSpec, spec_from_dict, spec_from_json


def field_of(**kwargs: object) -> str:
    with pytest.raises(ValidationError) as info:
        spec_from_dict({"name": "emails", "queues": ["default"], **kwargs})
    return info.value.field


@pytest.mark.parametrize(
    "name",
    ["", "Emails", "-a", "a-", "a_b", "a.b", "a" * 64, "é", "a\x00", "\udcff", None, 7],
)
def test_a_pool_name_is_a_dns_label(name: object) -> None:
    assert field_of(name=name) == "name"


def test_valid_names_pass() -> None:
    for name in ["a", "emails-2", "a" * 63, "0x"]:
        assert spec_from_dict({"name": name, "queues": ["q"]}).name == name


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"queues": []}, "queues"),
        ({"queues": "default"}, "queues"),
        ({"queues": ["ok", "bad name"]}, "queues.1"),
        ({"queues": ["a\x00"]}, "queues.0"),
        ({"queues": ["schedules"]}, "queues.0"),
        ({"queues": ["a", "a"]}, "queues"),
        ({"queues": [f"q{i}" for i in range(33)]}, "queues"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": True}, "concurrency"),
        ({"concurrency": 10**30}, "concurrency"),
        ({"concurrency": 1.5}, "concurrency"),
        ({"replicas": -1}, "replicas"),
        ({"replicas": 1001}, "replicas"),
        (
            {"autoscaling": {"enabled": True, "min_replicas": 5, "max_replicas": 2}},
            "autoscaling.min_replicas",
        ),
        ({"autoscaling": {"enabled": True, "max_replicas": 0}}, "autoscaling.max_replicas"),
        ({"autoscaling": {"enabled": "yes"}}, "autoscaling.enabled"),
        ({"autoscaling": {"target_tasks_per_replica": 0}}, "autoscaling.target_tasks_per_replica"),
        ({"autoscaling": {"surprise": 1}}, "autoscaling.surprise"),
        ({"autoscaling": []}, "autoscaling"),
    ],
)
def test_invalid_specs_name_the_field(changes: dict[str, object], field: str) -> None:
    assert field_of(**changes) == field


def test_manual_scale_turns_autoscaling_off_and_counts_a_generation() -> None:
    spec = PoolSpec("emails", ("default",), autoscaling=PoolAutoscaling(True, 1, 8, 5))
    assert spec.desired_replicas_when_fixed() is None
    scaled = spec.scaled(3)
    assert (scaled.replicas, scaled.autoscaling.enabled, scaled.generation) == (3, False, 2)
    assert scaled.autoscaling.max_replicas == 8  # the bounds are kept for when it is switched back on
    assert scaled.desired_replicas_when_fixed() == 3
    assert scaled.uid == spec.uid


def test_json_round_trip_keeps_identity() -> None:
    spec = PoolSpec("emails", ("a", "b"), 7, 2, PoolAutoscaling(True, 0, 4, 9), generation=5)
    assert spec_from_json(spec.to_json()) == spec


@pytest.mark.parametrize("text", ["", "[]", '{"name": "x"}', "\x00", '{"name": "x", "queues": [1]}'])
def test_unreadable_stored_specs_are_validation_errors(text: str) -> None:
    with pytest.raises(ValidationError):
        spec_from_json(text)


def test_unreadable_event_is_shown_not_raised() -> None:
    assert PoolEvent.from_json("{").kind == "Unreadable"
    event = PoolEvent(1.5, "Scaled", "to 3")
    assert PoolEvent.from_json(event.to_json()) == event
