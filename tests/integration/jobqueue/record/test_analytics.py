"""Analytics over a known workload: the numbers must be exactly those computed by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from psycopg_pool import ConnectionPool
from record_helpers import drain, known_workload, make_recorder

from jobqueue import Client
from jobqueue.record.analytics import Granularity, aggregates, rollup, window_stats

pytestmark = pytest.mark.timeout(60)

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def hour_start(client: Client, pg_pool: ConnectionPool) -> dt.datetime:
    """Records the known workload five minutes into the hour that began two hours ago."""
    start = (dt.datetime.now(dt.UTC) - 2 * HOUR).replace(minute=0, second=0, microsecond=0)
    known_workload(client, int((start + dt.timedelta(minutes=5)).timestamp() * 1000))
    assert drain(make_recorder(client, pg_pool)) == 100 * 3 + 10 * 5 + 20 + 5
    return start


def by_key(stats: list, queue: str | None, name: str | None):  # type: ignore[no-untyped-def]
    [row] = [s for s in stats if (s.queue, s.name) == (queue, name)]
    return row


def test_window_stats_match_the_known_workload(pg_pool: ConnectionPool, hour_start: dt.datetime) -> None:
    stats = window_stats(pg_pool, window=HOUR, end=hour_start + HOUR)
    work = by_key(stats, "a", "work")
    assert (work.enqueued, work.succeeded, work.failed, work.retried) == (100, 100, 0, 0)
    # percentile_cont over 1..100: rank p*(n-1), interpolated linearly.
    assert work.duration_p50_ms == pytest.approx(50.5)
    assert work.duration_p95_ms == pytest.approx(95.05)
    assert work.duration_p99_ms == pytest.approx(99.01)
    assert (work.duration_avg_ms, work.duration_max_ms) == (pytest.approx(50.5), 100)
    assert work.success_rate == 1.0

    bad = by_key(stats, "a", "bad")
    assert (bad.enqueued, bad.succeeded, bad.failed, bad.retried) == (10, 0, 10, 10)
    assert (bad.duration_p50_ms, bad.failure_rate) == (1000, 1.0)

    queue_a = by_key(stats, "a", None)
    assert queue_a.duration_count == 110
    assert queue_a.duration_p50_ms == pytest.approx(55.5)  # ranks 54 and 55 of 1..100 + ten 1000s
    assert queue_a.success_rate == pytest.approx(100 / 110)
    assert queue_a.failure_rate == pytest.approx(10 / 110)

    queue_b = by_key(stats, "b", None)
    assert (queue_b.enqueued, queue_b.cancelled, queue_b.completed, queue_b.success_rate) == (20, 5, 5, None)

    overall = stats[0]
    assert (overall.queue, overall.name) == (None, None)
    assert (overall.enqueued, overall.completed) == (130, 115)
    assert overall.enqueued_per_second == pytest.approx(130 / 3600)
    assert overall.completed_per_second == pytest.approx(115 / 3600)


def test_a_window_without_events_reports_zeros(pg_pool: ConnectionPool, hour_start: dt.datetime) -> None:
    [overall] = window_stats(pg_pool, window=HOUR, end=hour_start)
    assert (overall.enqueued, overall.completed, overall.success_rate, overall.duration_p50_ms) == (
        0,
        0,
        None,
        None,
    )


def test_hourly_and_daily_aggregates(pg_pool: ConnectionPool, hour_start: dt.datetime) -> None:
    for _ in range(2):  # recomputing a bucket is idempotent
        rollup(pg_pool, Granularity.HOUR, hour_start, hour_start + HOUR)
        rollup(pg_pool, Granularity.DAY, hour_start, hour_start + HOUR)
    hourly = aggregates(pg_pool, Granularity.HOUR, hour_start - HOUR, hour_start + 2 * HOUR)
    assert [(r.bucket, r.queue, r.name) for r in hourly] == [
        (hour_start, "a", "bad"),
        (hour_start, "a", "work"),
        (hour_start, "b", "work"),
    ]
    work = hourly[1]
    assert (work.enqueued, work.succeeded, work.duration_count) == (100, 100, 100)
    assert (work.duration_p50_ms, work.duration_p95_ms, work.duration_p99_ms) == (
        pytest.approx(50.5),
        pytest.approx(95.05),
        pytest.approx(99.01),
    )
    day = hour_start.replace(hour=0)
    daily = aggregates(pg_pool, Granularity.DAY, day, day + dt.timedelta(days=1), queue="a", name="bad")
    assert [(r.bucket, r.failed, r.retried, r.duration_max_ms) for r in daily] == [(day, 10, 10, 1000)]
