"""Pure flow-control model: validation and rate-limit statistics from the GCRA state."""

from __future__ import annotations

import datetime as dt

import pytest

from jobqueue.errors import ValidationError
from jobqueue.flow_control import (
    PriorityPolicy,
    RateLimit,
    make_rate_limit,
    validate_max_in_flight,
    validate_policy,
)
from jobqueue.queue_config_hash import parse_config, rate_limit_fields
from jobqueue.rate_limit_stats import compute_rate_stats

pytestmark = pytest.mark.timeout(10)


def test_every_way_of_stating_a_rate() -> None:
    assert make_rate_limit(max_tasks_per_minute=120, burst=20) == RateLimit(120, 60.0, 20, True)
    assert make_rate_limit(max_tasks_per_second=5).interval_ms == 200
    assert make_rate_limit(max_tasks_per_hour=3600).per_second == 1
    assert make_rate_limit(limit=5, period=10).interval_ms == 2000
    assert make_rate_limit(limit=5, period=dt.timedelta(minutes=2)).period_seconds == 120
    assert make_rate_limit(max_tasks_per_second=1, enabled=False).enabled is False


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "rate_limit"),
        ({"max_tasks_per_second": 1, "max_tasks_per_minute": 1}, "rate_limit"),
        ({"max_tasks_per_minute": 0}, "max_tasks_per_minute"),
        ({"max_tasks_per_minute": 2.5}, "max_tasks_per_minute"),
        ({"max_tasks_per_second": True}, "max_tasks_per_second"),
        ({"limit": 5}, "period"),
        ({"period": 5}, "limit"),
        ({"limit": 5, "period": 0}, "period"),
        ({"limit": 5, "period": "1m"}, "period"),
        ({"max_tasks_per_second": 1, "burst": 0}, "burst"),
        ({"max_tasks_per_second": 1, "enabled": "yes"}, "enabled"),
    ],
)
def test_bad_rates_name_the_field(options: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_rate_limit(**options)  # type: ignore[arg-type]
    assert info.value.field == field


def test_policy_and_concurrency_validation() -> None:
    assert validate_policy("weighted", None) == (PriorityPolicy.WEIGHTED, (6, 3, 1))
    assert validate_policy("weighted", [1, 0, 1]) == (PriorityPolicy.WEIGHTED, (1, 0, 1))
    assert validate_policy("strict", None) == (PriorityPolicy.STRICT, None)
    for policy, weights in [
        ("fair", None),
        ("weighted", [1, 2]),
        ("weighted", [0, 0, 0]),
        ("weighted", [-1, 1, 1]),
        ("strict", [1, 1, 1]),
    ]:
        with pytest.raises(ValidationError):
            validate_policy(policy, weights)
    assert validate_max_in_flight(None) is None
    assert validate_max_in_flight(0) is None
    assert validate_max_in_flight(3) == 3
    with pytest.raises(ValidationError) as info:
        validate_max_in_flight(-1)
    assert info.value.field == "max_in_flight"


def test_config_round_trip() -> None:
    rate = make_rate_limit(max_tasks_per_minute=100, burst=20, enabled=False)
    raw = {
        **rate_limit_fields(rate),
        "paused": "1",
        "max_in_flight": "4",
        "priority_policy": "weighted",
        "weights": "[5,3,2]",
    }
    cfg = parse_config("q", raw)
    assert cfg.rate_limit == rate
    assert (cfg.paused, cfg.max_in_flight, cfg.priority_policy, cfg.weights) == (
        True,
        4,
        PriorityPolicy.WEIGHTED,
        (5, 3, 2),
    )
    empty = parse_config("q", {})
    assert (empty.paused, empty.max_in_flight, empty.rate_limit, empty.weights) == (False, None, None, None)


def test_stats_from_gcra_state() -> None:
    rate = make_rate_limit(max_tasks_per_minute=120, burst=20)  # one per 500 ms
    now = 1_000_000.0
    fresh = compute_rate_stats("q", rate, {}, now)
    assert (fresh.current_count, fresh.remaining, fresh.burst_used, fresh.wait_seconds) == (0, 20, 0, 0.0)
    # 5 starts counted: tat is 2.5 s ahead.
    some = compute_rate_stats("q", rate, {"tat": str(now + 2500), "interval": "500"}, now)
    assert (some.current_count, some.remaining, some.burst_used, some.wait_seconds) == (5, 15, 5, 0.0)
    # Burst used up: tat = now + 20 intervals; next start in one interval.
    full = compute_rate_stats("q", rate, {"tat": str(now + 10_000), "interval": "500"}, now)
    assert (full.current_count, full.remaining, full.burst_used, full.wait_seconds) == (20, 0, 20, 0.5)
    # A debt counted under another interval is re-expressed in starts (as fetch.lua does).
    rescaled = compute_rate_stats("q", rate, {"tat": str(now + 60_000), "interval": "60000"}, now)
    assert (rescaled.current_count, rescaled.remaining) == (1, 19)
    off = compute_rate_stats("q", make_rate_limit(max_tasks_per_second=1, enabled=False), {}, now)
    assert (off.enabled, off.remaining, off.wait_seconds) == (False, None, 0.0)
