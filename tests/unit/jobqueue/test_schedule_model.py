"""Pure schedule model: validation, deterministic fire ids, missed-fire planning."""

from __future__ import annotations

import datetime as dt

import pytest

from jobqueue.errors import ScheduleCorrupt, ValidationError
from jobqueue.keys import queue_of
from jobqueue.schedules.cron import parse_cron
from jobqueue.schedules.model import (
    MAX_CATCH_UP,
    ConcurrencyPolicy,
    Schedule,
    fire_task_id,
    make_schedule,
    plan_fires,
    to_ms,
)

pytestmark = pytest.mark.timeout(10)
UTC = dt.UTC


def test_schedule_round_trips_through_json() -> None:
    s = make_schedule(
        "daily_cleanup", cron="0 2 * * *", task="cleanup", timezone="America/New_York", args=[1],
        kwargs={"dry": False}, queue="maintenance", priority="high", concurrency_policy="Forbid",
        starting_deadline_seconds=300,
    )  # fmt: skip
    assert Schedule.from_json(s.to_json(), s.name) == s
    assert s.concurrency_policy == ConcurrencyPolicy.FORBID


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": "a{b}"}, "name"),
        ({"cron": "0 2 * *"}, "cron"),
        ({"timezone": "Nowhere/City"}, "timezone"),
        ({"task": ""}, "task"),
        ({"queue": "no spaces"}, "queue"),
        ({"args": "x"}, "args"),
        ({"kwargs": {1: 2}}, "kwargs"),
        ({"args": [object()]}, "args"),
        ({"priority": "urgent"}, "priority"),
        ({"concurrency_policy": "forbid!"}, "concurrency_policy"),
        ({"starting_deadline_seconds": 0}, "starting_deadline_seconds"),
    ],
)
def test_bad_definitions_name_the_field(options: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"name": "s", "cron": "@daily", "task": "t"}
    name = options.pop("name", base.pop("name"))
    with pytest.raises(ValidationError) as info:
        make_schedule(name, **{**base, **options})  # type: ignore[arg-type]
    assert info.value.field == field


def test_fire_task_ids_are_deterministic_valid_and_distinct() -> None:
    a = fire_task_id("q", "s", 1_700_000_000_000)
    assert a == fire_task_id("q", "s", 1_700_000_000_000)
    assert queue_of(a) == "q"
    assert a != fire_task_id("q", "s", 1_700_000_001_000)
    assert a != fire_task_id("q", "other", 1_700_000_000_000)
    # The id's UUIDv7 timestamp is the fire time, so ids sort by fire time.
    assert int(a.split(".")[1][:12], 16) == 1_700_000_000_000


def test_plan_runs_every_due_fire_without_deadline() -> None:
    spec = parse_cron("* * * * * *")
    first = dt.datetime(2026, 1, 1, tzinfo=UTC)
    plan = plan_fires(spec, to_ms(first), first + dt.timedelta(seconds=2, milliseconds=500), None)
    assert plan.run == [to_ms(first) + i * 1000 for i in range(3)]
    assert plan.missed == 0
    assert plan.next_after[plan.run[-1]] == to_ms(first) + 3000


def test_plan_skips_fires_older_than_the_deadline() -> None:
    spec = parse_cron("* * * * *")
    first = dt.datetime(2026, 1, 1, tzinfo=UTC)
    now = first + dt.timedelta(minutes=10, seconds=30)
    plan = plan_fires(spec, to_ms(first), now, 150)
    # Fires at :08 and :09 and :10 are within 150 s; :00 .. :07 are missed.
    assert plan.run == [to_ms(first + dt.timedelta(minutes=m)) for m in (8, 9, 10)]
    assert (plan.missed, plan.missed_from) == (8, to_ms(first))


def test_plan_caps_catch_up_after_a_long_outage() -> None:
    spec = parse_cron("* * * * *")
    first = dt.datetime(2026, 1, 1, tzinfo=UTC)
    now = first + dt.timedelta(days=1, seconds=5)
    plan = plan_fires(spec, to_ms(first), now, None)
    assert plan.run == [to_ms(first + dt.timedelta(days=1))]
    assert plan.missed >= MAX_CATCH_UP


@pytest.mark.parametrize(
    "stored",
    [
        "not json",
        "[1, 2]",
        '{"name": "x"}',
        make_schedule("x", cron="@daily", task="t").to_json().replace('"medium"', '"urgent"'),
        make_schedule("x", cron="@daily", task="t").to_json().replace('"Allow"', '"Sometimes"'),
    ],
)
def test_an_unreadable_stored_definition_is_a_schedule_corrupt_error(stored: str) -> None:
    with pytest.raises(ScheduleCorrupt) as info:
        Schedule.from_json(stored, "nightly")
    assert info.value.name == "nightly"
    assert "nightly" in str(info.value)
