"""Retry's arguments are checked where the task raises it: a clear ValidationError naming the field."""

from __future__ import annotations

import datetime as dt

import pytest

from jobqueue import Retry, ValidationError
from jobqueue.errors import MAX_RETRY_COUNTDOWN_SECONDS


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"countdown": -0.001}, "countdown"),
        ({"countdown": float("nan")}, "countdown"),
        ({"countdown": float("inf")}, "countdown"),
        ({"countdown": 10**400}, "countdown"),
        ({"countdown": MAX_RETRY_COUNTDOWN_SECONDS + 1}, "countdown"),
        ({"countdown": True}, "countdown"),
        ({"countdown": "5"}, "countdown"),
        ({"countdown": 1, "eta": dt.datetime.now(dt.UTC)}, "countdown"),
        ({"eta": "tomorrow"}, "eta"),
        ({"eta": dt.datetime(9999, 1, 1, tzinfo=dt.UTC)}, "eta"),
        ({"reason": b"bytes"}, "reason"),
    ],
)
def test_bad_values_raise_a_validation_error_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Retry(**kwargs)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_the_delay_from_a_countdown_an_eta_or_the_policy() -> None:
    assert Retry(countdown=0).delay_seconds == 0.0
    assert Retry(countdown=2.5, reason="429").delay_seconds == 2.5
    assert Retry().delay_seconds is None  # the task's own backoff decides
    past = Retry(eta=dt.datetime(2000, 1, 1))  # naive = UTC; in the past = at once
    assert past.delay_seconds == 0.0
    soon = Retry(eta=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60))
    assert soon.delay_seconds is not None and 58 < soon.delay_seconds <= 60
    assert str(Retry(reason="busy")) == "busy" and Retry(count=False).count is False
