"""The ``expires`` option, pure (jobqueue/expiry.py): absolute milliseconds, or ValidationError('expires')."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from jobqueue.errors import ValidationError
from jobqueue.expiry import MAX_DELAY_SECONDS, expiry_ms


def test_seconds_are_from_now_and_a_datetime_is_absolute() -> None:
    before = time.time()
    assert before * 1000 + 29_000 <= expiry_ms(30) <= time.time() * 1000 + 30_000
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    assert expiry_ms(at) == int(at.timestamp() * 1000)
    naive = (at + dt.timedelta(minutes=1)).replace(tzinfo=None)  # naive = UTC
    assert expiry_ms(naive) == int((at + dt.timedelta(minutes=1)).timestamp() * 1000)
    paris = at.astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert expiry_ms(paris) == expiry_ms(at)


@pytest.mark.parametrize(
    "value",
    [0, -1, -0.0, float("nan"), float("inf"), float("-inf"), True, False, None, "10", [10], 10**400,
     MAX_DELAY_SECONDS + 1, dt.datetime(1970, 1, 1), dt.datetime(1, 1, 1), dt.datetime.max,
     dt.datetime(9999, 1, 1, tzinfo=dt.UTC), dt.date(2999, 1, 1)],
)  # fmt: skip
def test_anything_else_is_refused_naming_expires(value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        expiry_ms(value)
    assert caught.value.field == "expires"


def test_it_must_be_after_the_eta_or_countdown() -> None:
    with pytest.raises(ValidationError, match="after the task's eta"):
        expiry_ms(30, countdown=60)
    eta = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with pytest.raises(ValidationError, match="after the task's eta"):
        expiry_ms(eta - dt.timedelta(seconds=1), eta=eta)
    assert expiry_ms(eta + dt.timedelta(seconds=1), eta=eta) > eta.timestamp() * 1000
    assert expiry_ms(120, countdown=60) > 0
