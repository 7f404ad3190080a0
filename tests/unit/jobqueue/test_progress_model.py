"""Progress values (jobqueue/progress.py) and the worker's throttle (worker/progress.py), without I/O."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from jobqueue import JobQueueError
from jobqueue.errors import InvalidProgress
from jobqueue.progress import progress_value
from jobqueue.worker.progress import ProgressReporter


def test_a_value_is_kept_as_given() -> None:
    assert progress_value(3) == {"done": 3, "total": None, "message": None}
    assert progress_value(2.5, 10, "half way: ünïcode ✓") == {
        "done": 2.5,
        "total": 10,
        "message": "half way: ünïcode ✓",
    }
    assert progress_value(0, 0)["total"] == 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((5, 3), "total"),
        ((-1,), "done"),
        ((1, -1), "total"),
        ((float("nan"),), "done"),
        ((float("inf"),), "done"),
        ((1, float("-inf")), "total"),
        ((10**400,), "done"),
        ((2**53 + 1,), "done"),
        ((True,), "done"),
        (("3",), "done"),
        ((None,), "done"),
        ((1, 2, 3), "message"),
        ((1, 2, "x" * 1001), "message"),
        ((1, 2, "\ud800"), "message"),
        ((1, 2, "a\x00b"), "message"),
    ],
)
def test_bad_input_is_a_typed_value_error_naming_the_argument(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(InvalidProgress) as caught:
        progress_value(*args)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, JobQueueError)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reports_inside_the_interval_are_coalesced_and_the_last_is_flushed() -> None:
    clock = FakeClock()
    written: list[Any] = []
    # A long interval on the fake clock: the trailing timer (real time) is armed, flush cancels it.
    reporter = ProgressReporter(
        lambda v: written.append(v["done"]), 60.0, clock=clock, wall_clock=lambda: 7.0
    )
    for done in range(1, 1001):
        reporter.report(progress_value(done))
    assert written == [1]
    clock.now += 61
    reporter.report(progress_value(1001))
    reporter.report(progress_value(1002))
    assert written == [1, 1001]
    reporter.flush()
    assert written == [1, 1001, 1002] and reporter.writes == 3
    reporter.report(progress_value(2000))  # after the attempt returned: ignored
    reporter.flush()
    assert written == [1, 1001, 1002]


def test_the_stored_value_carries_its_time() -> None:
    written: list[Any] = []
    reporter = ProgressReporter(written.append, 0.5, wall_clock=lambda: 1234.56789)
    reporter.report(progress_value(1, 2, "m"))
    assert written == [{"done": 1, "total": 2, "message": "m", "at": 1234.568}]


def test_a_failed_write_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(value: Any) -> None:
        raise ConnectionError("redis is away")

    reporter = ProgressReporter(broken, 0.5)
    with caplog.at_level(logging.WARNING):
        reporter.report(progress_value(1))
        reporter.flush()
    assert "could not store task progress: ConnectionError: redis is away" in caplog.text
