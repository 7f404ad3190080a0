"""Lax or ambiguous input is refused where it enters (issue 15: defects 5, 10, 16, 18)."""

from __future__ import annotations

import datetime as dt

import pytest

from jobqueue import ConfigurationError, ValidationError
from jobqueue.broker.enqueue import make_request
from jobqueue.flow_control import make_retry_defaults
from jobqueue.keys import queue_of, validate_queue_name
from jobqueue.retry import RetryPolicy
from jobqueue.schedules.cron import parse_timezone
from jobqueue.schedules.model import make_schedule


@pytest.mark.parametrize("name", ["default\n", "q\n"])
def test_a_trailing_newline_is_not_a_valid_name(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_queue_name(name)
    with pytest.raises(ValidationError):
        queue_of(f"{name.strip()}.0190a1b2c3d47e8f9a0b1c2d3e4f5a6b\n")
    with pytest.raises(ValidationError):
        make_schedule("s\n", cron="* * * * *", task="t")


def test_a_queue_named_like_jobqueues_own_keys_is_refused() -> None:
    with pytest.raises(ValidationError, match="reserved") as info:
        make_request("add", ["secret"], queue="schedules")
    assert info.value.field == "queue"


@pytest.mark.parametrize("zone", ["America", "Etc", "Europe/", "../etc"])
def test_time_zone_folders_are_not_zones(zone: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_timezone(zone)
    assert info.value.field == "timezone"


def test_a_schedule_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        make_schedule("s", cron="* * * * *", task="x", args=["\ud800"])
    assert info.value.field == "args[0]"


def test_eta_and_countdown_are_bounded() -> None:
    with pytest.raises(ValidationError, match="eta"):
        make_request("t", eta=dt.datetime(9999, 12, 31, tzinfo=dt.UTC))
    with pytest.raises(ValidationError, match="eta"):
        make_request("t", eta=dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-12))))
    with pytest.raises(ValidationError, match="countdown"):
        make_request("t", countdown=10**12)
    with pytest.raises(ValidationError, match="countdown"):
        make_request("t", countdown="10")  # type: ignore[arg-type]
    make_request("t", eta=dt.datetime.now(dt.UTC) + dt.timedelta(days=365))


def test_retry_base_above_max_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        make_retry_defaults(max_retries=3, base_seconds=60, max_seconds=10)
    assert info.value.field == "base_seconds"
    with pytest.raises(ConfigurationError):
        RetryPolicy(base_seconds=60, max_seconds=10)
