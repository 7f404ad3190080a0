"""A deployment may set a floor on how often a cron schedule fires (issue 15: limits); registration refuses
a denser schedule with a ValidationError naming 'cron', and stores nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from jobqueue import Client, Settings
from jobqueue.errors import ScheduleNotFound, ValidationError
from jobqueue.schedules.cron import parse_cron, shortest_interval
from jobqueue.schedules.registry import ScheduleRegistry


def test_shortest_interval_sees_the_densest_stretch_of_a_cron() -> None:
    after = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert shortest_interval(parse_cron("* * * * * *"), after) == 1
    assert shortest_interval(parse_cron("*/5 * * * *"), after) == 300
    # One minute apart, then 59: the floor applies to the closest pair.
    assert shortest_interval(parse_cron("0,1 * * * *"), after) == 60


def test_a_schedule_denser_than_the_floor_is_refused_and_not_stored(settings: Settings) -> None:
    client = Client(settings.model_copy(update={"min_schedule_interval_seconds": 60.0}))
    try:
        registry = ScheduleRegistry(client)
        with pytest.raises(ValidationError) as refused:
            registry.register("every-second", cron="* * * * * *", task="add")
        assert refused.value.field == "cron" and "60 s" in str(refused.value)
        with pytest.raises(ScheduleNotFound):
            registry.get("every-second")
        assert registry.register("every-minute", cron="* * * * *", task="add").schedule.name == "every-minute"
    finally:
        client.close()


def test_the_default_floor_keeps_seconds_schedules(client: Client) -> None:
    assert ScheduleRegistry(client).register("tick", cron="* * * * * *", task="add").schedule.name == "tick"
