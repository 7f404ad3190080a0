"""The Analytics page's arithmetic (static/js/analytics_model.js) under node: buckets filled over the
charted range, counts summed across queues and tasks, success rate over succeeded + failed, the slowest
task's percentiles, dead letters flattened by queue and reason, durations for people."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from typing import Any

import pytest

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the UI's pure modules are not checked"
)
NOW = 1_765_065_600 + 5400  # 2025-12-07 01:30 UTC


def call(function: str, *args: Any) -> Any:
    module = resources.files("jobqueue_api").joinpath("static", "js", "analytics_model.js")
    script = (
        f"import * as m from {json.dumps('file://' + str(module))};"
        f"const out = m.{function}(...{json.dumps(list(args))});"
        "console.log(out === undefined ? 'null' : JSON.stringify(out));"
    )
    assert NODE is not None
    out = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(out.stdout)


def row(bucket: str, **fields: Any) -> dict[str, Any]:
    base = {"bucket": bucket, "queue": "q", "name": "t", "succeeded": 0, "failed": 0, "cancelled": 0,
            "duration_p50_ms": None, "duration_p95_ms": None, "duration_p99_ms": None}  # fmt: skip
    return {**base, **fields}


def test_hourly_buckets_sum_rows_and_leave_gaps() -> None:
    rows = [
        row("2025-12-07T01:00:00+00:00", succeeded=3, failed=1, duration_p50_ms=5.0, duration_p99_ms=9.0),
        row("2025-12-07T01:00:00Z", name="u", succeeded=4, cancelled=2, duration_p50_ms=7.0),
        row("2025-12-07T00:00:00Z", failed=2),
        row("2025-12-05T00:00:00Z", succeeded=100),  # outside the last 24 hours: not charted
    ]
    s = call("bucketSeries", rows, "hourly", NOW)
    assert len(s["buckets"]) == 24 and s["buckets"][-1] == NOW - 1800
    assert s["completed"][-2:] == [2, 10] and sum(s["completed"]) == 12
    assert s["successRate"][-2:] == [0, 87.5] and s["successRate"][0] is None
    assert (s["p50"][-1], s["p99"][-1], s["p95"][-1], s["p50"][-2]) == (7.0, 9.0, None, None)


def test_daily_buckets_are_utc_days() -> None:
    s = call("bucketSeries", [row("2025-12-06T00:00:00Z", succeeded=1)], "daily", NOW)
    assert len(s["buckets"]) == 30 and s["buckets"][-1] == 1_765_065_600
    assert s["completed"][-2:] == [1, 0]


def test_no_rows_and_garbled_rows() -> None:
    s = call("bucketSeries", [row("not a date", succeeded=5)], "hourly", NOW)
    assert sum(s["completed"]) == 0 and set(s["successRate"]) == {None}
    assert call("bucketSeries", None, "weekly", NOW)["buckets"][-1] == NOW - 1800  # unknown: hourly


def test_breakdown_and_dead_letter_rows() -> None:
    breakdown = [{"queue": "a", "name": None}, {"queue": "a", "name": "t"}, {"queue": None, "name": None}]
    assert call("breakdownRows", breakdown, "queue") == [{"queue": "a", "name": None}]
    assert call("breakdownRows", breakdown, "task") == [{"queue": "a", "name": "t"}]
    stats = [
        {"queue": "a", "by_reason": {"not_retryable": 2, "<b>x</b>": 5}},
        {"queue": "b", "by_reason": {"not_retryable": 2}},
        {"queue": "c"},
    ]
    assert call("deadLetterRows", stats) == [
        {"queue": "a", "reason": "<b>x</b>", "count": 5},
        {"queue": "a", "reason": "not_retryable", "count": 2},
        {"queue": "b", "reason": "not_retryable", "count": 2},
    ]


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, "—"), (0.25, "0.3 ms"), (850, "850 ms"), (1234, "1.2 s"), (65_000, "1 min 5 s"),
     (7_200_000, "2 h 0 min"), (90_000_000, "1 d 1 h"), (1e308, "> 99999 d"), (-1, "—")],
)  # fmt: skip
def test_fmt_ms(ms: float | None, text: str) -> None:
    assert call("fmtMs", ms) == text
