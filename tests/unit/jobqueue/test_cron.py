"""Cron math in IANA zones across daylight-saving changes (pure, fixed dates)."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from jobqueue.errors import ValidationError
from jobqueue.schedules.cron import fires_between, next_fire, parse_cron

pytestmark = pytest.mark.timeout(10)
NY = "America/New_York"
UTC = dt.UTC


def wall(expr: str, start: dt.datetime, end: dt.datetime, tz: str = NY) -> list[str]:
    spec = parse_cron(expr, tz)
    return [f.astimezone(spec.zone).strftime("%m-%d %H:%M:%S %Z") for f in fires_between(spec, start, end)]


def test_daily_fixed_time_fires_once_after_the_spring_forward_gap() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT: 02:00 does not exist that day; it fires at 03:00 EDT, once.
    fires = wall(
        "0 2 * * *", dt.datetime(2026, 3, 6, 12, tzinfo=UTC), dt.datetime(2026, 3, 10, 12, tzinfo=UTC)
    )
    assert fires == ["03-07 02:00:00 EST", "03-08 03:00:00 EDT", "03-09 02:00:00 EDT", "03-10 02:00:00 EDT"]


def test_fixed_time_inside_the_gap_and_right_after_it_fire_once() -> None:
    start, end = dt.datetime(2026, 3, 7, 12, tzinfo=UTC), dt.datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert wall("30 2 * * *", start, end) == ["03-08 03:00:00 EDT"]
    assert wall("0 2,3 * * *", start, end) == ["03-08 03:00:00 EDT"]


def test_fixed_time_in_the_repeated_hour_fires_only_in_the_first_pass() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice.
    start, end = dt.datetime(2026, 10, 31, 12, tzinfo=UTC), dt.datetime(2026, 11, 2, 12, tzinfo=UTC)
    assert wall("30 1 * * *", start, end) == ["11-01 01:30:00 EDT", "11-02 01:30:00 EST"]
    # Asked from inside the second pass, the next fire is the next day's.
    spec = parse_cron("30 1 * * *", NY)
    inside_second_pass = dt.datetime(2026, 11, 1, 6, 10, tzinfo=UTC)  # 01:10 EST
    assert next_fire(spec, inside_second_pass) == dt.datetime(2026, 11, 2, 6, 30, tzinfo=UTC)


def test_wildcard_schedules_follow_the_wall_clock_through_both_changes() -> None:
    spring = wall(
        "*/30 * * * *", dt.datetime(2026, 3, 8, 6, 0, tzinfo=UTC), dt.datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    )
    assert spring == ["03-08 01:30:00 EST", "03-08 03:00:00 EDT", "03-08 03:30:00 EDT"]
    fall = wall(
        "*/30 * * * *",
        dt.datetime(2026, 11, 1, 4, 45, tzinfo=UTC),
        dt.datetime(2026, 11, 1, 7, 0, tzinfo=UTC),
    )
    assert fall == [
        "11-01 01:00:00 EDT",
        "11-01 01:30:00 EDT",
        "11-01 01:00:00 EST",
        "11-01 01:30:00 EST",
        "11-01 02:00:00 EST",
    ]
    # Every 30 real minutes: the UTC instants are evenly spaced.
    spec = parse_cron("*/30 * * * *", NY)
    instants = fires_between(
        spec, dt.datetime(2026, 11, 1, 4, 45, tzinfo=UTC), dt.datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
    )
    assert {b - a for a, b in itertools.pairwise(instants)} == {dt.timedelta(minutes=30)}


def test_hourly_and_monthly_shortcuts_in_a_zone() -> None:
    hourly = wall(
        "@hourly", dt.datetime(2026, 3, 8, 5, 30, tzinfo=UTC), dt.datetime(2026, 3, 8, 8, 30, tzinfo=UTC)
    )
    assert hourly == ["03-08 01:00:00 EST", "03-08 03:00:00 EDT", "03-08 04:00:00 EDT"]
    monthly = wall("@monthly", dt.datetime(2026, 2, 15, tzinfo=UTC), dt.datetime(2026, 4, 15, tzinfo=UTC))
    assert monthly == ["03-01 00:00:00 EST", "04-01 00:00:00 EDT"]
    spec = parse_cron("@daily", "Europe/Berlin")
    assert next_fire(spec, dt.datetime(2026, 6, 1, 12, tzinfo=UTC)) == dt.datetime(2026, 6, 1, 22, tzinfo=UTC)


def test_six_fields_put_seconds_first() -> None:
    spec = parse_cron("*/15 * * * * *")
    assert spec.has_seconds
    start = dt.datetime(2026, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    assert [f.second for f in fires_between(spec, start, start + dt.timedelta(minutes=1))] == [15, 30, 45, 0]
    every_second = parse_cron("* * * * * *")
    assert next_fire(every_second, start) == dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    # Strictly after: a fire time itself is not returned again.
    on_the_dot = dt.datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert next_fire(every_second, on_the_dot) == dt.datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "tz", "field"),
    [
        ("0 2 * *", "UTC", "cron"),
        ("61 * * * *", "UTC", "cron"),
        ("@fortnightly", "UTC", "cron"),
        ("", "UTC", "cron"),
        ("H * * * *", "UTC", "cron"),
        ("R * * * *", "UTC", "cron"),
        ("0 2 * * *", "Mars/Olympus_Mons", "timezone"),
        ("0 2 * * *", "", "timezone"),
        ("0 2 * * *", "../etc/passwd", "timezone"),
    ],
)
def test_bad_cron_or_timezone_is_a_validation_error(cron: str, tz: str, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_cron(cron, tz)
    assert info.value.field == field


def test_a_date_that_never_comes_is_a_validation_error() -> None:
    spec = parse_cron("0 0 30 2 *")
    with pytest.raises(ValidationError):
        next_fire(spec, dt.datetime(2026, 1, 1, tzinfo=UTC))
