"""Analytics over the record: throughput, outcomes, duration percentiles. (Live Redis state, queue depth
and worker utilization, is read by jobqueue.broker.live_state: this package talks to PostgreSQL only.)

Percentiles are computed by PostgreSQL (``percentile_cont``: linear interpolation between the two nearest
ranks), over the final attempt of each task that finished in the window.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from dataclasses import dataclass

from psycopg import sql
from psycopg.rows import class_row, kwargs_row
from psycopg_pool import ConnectionPool

from jobqueue.errors import ValidationError
from jobqueue.record.db import load_sql, translate_errors

DEFAULT_WINDOW = dt.timedelta(hours=1)


class Granularity(enum.StrEnum):
    """Bucket size of stored aggregates."""

    HOUR = "hour"
    DAY = "day"

    @property
    def table(self) -> str:
        """The aggregate table of this granularity."""
        return "metrics_hourly" if self is Granularity.HOUR else "metrics_daily"

    @property
    def width(self) -> dt.timedelta:
        """The length of one bucket."""
        return dt.timedelta(hours=1) if self is Granularity.HOUR else dt.timedelta(days=1)


@dataclass(frozen=True)
class WindowStats:
    """Numbers for one (queue, task name) over a window; ``queue``/``name`` None = all of them.

    ``failed`` counts dead-lettered tasks (FAILED or TIMEOUT); rates are over succeeded + failed, so
    cancelled tasks count in neither.
    """

    queue: str | None
    name: str | None
    start: dt.datetime
    end: dt.datetime
    enqueued: int
    succeeded: int
    failed: int
    cancelled: int
    retried: int
    duration_count: int
    duration_avg_ms: float | None
    duration_p50_ms: float | None
    duration_p95_ms: float | None
    duration_p99_ms: float | None
    duration_max_ms: float | None

    @property
    def seconds(self) -> float:
        """Length of the window."""
        return (self.end - self.start).total_seconds()

    @property
    def completed(self) -> int:
        """Tasks that reached a final state in the window."""
        return self.succeeded + self.failed + self.cancelled

    @property
    def enqueued_per_second(self) -> float:
        """Average enqueue rate over the window."""
        return self.enqueued / self.seconds

    @property
    def completed_per_second(self) -> float:
        """Average completion rate over the window."""
        return self.completed / self.seconds

    @property
    def success_rate(self) -> float | None:
        """succeeded / (succeeded + failed); None when nothing finished."""
        finished = self.succeeded + self.failed
        return self.succeeded / finished if finished else None

    @property
    def failure_rate(self) -> float | None:
        """failed / (succeeded + failed); None when nothing finished."""
        finished = self.succeeded + self.failed
        return self.failed / finished if finished else None


@dataclass(frozen=True)
class AggregateRow:
    """One stored aggregate bucket."""

    bucket: dt.datetime
    queue: str
    name: str
    enqueued: int
    succeeded: int
    failed: int
    cancelled: int
    retried: int
    duration_count: int
    duration_avg_ms: float | None
    duration_p50_ms: float | None
    duration_p95_ms: float | None
    duration_p99_ms: float | None
    duration_max_ms: float | None


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def window_stats(
    pool: ConnectionPool,
    window: dt.timedelta = DEFAULT_WINDOW,
    end: dt.datetime | None = None,
    queue: str | None = None,
    name: str | None = None,
) -> list[WindowStats]:
    """Stats over [end - window, end): one row per (queue, name), one per queue (name None) and one
    overall (queue and name None), overall first. ``queue`` and ``name`` restrict every row, so the
    overall row is then the total of that queue and/or task name."""
    if window <= dt.timedelta(0):
        raise ValidationError("window", "must be positive")
    end = end or _utc_now()
    if end.tzinfo is None:
        raise ValidationError("end", "must be timezone-aware")
    start = end - window
    with translate_errors(), pool.connection() as conn:
        # The statement returns every field but the window itself, which is the same for every row.
        cur = conn.cursor(row_factory=kwargs_row(functools.partial(WindowStats, start=start, end=end)))
        rows = cur.execute(
            load_sql("window_stats"), {"start": start, "end": end, "queue": queue, "name": name}
        ).fetchall()
    if not rows:
        rows = [WindowStats(None, None, start, end, 0, 0, 0, 0, 0, 0, None, None, None, None, None)]
    return rows


def _floor(moment: dt.datetime, granularity: Granularity) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    if granularity is Granularity.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def rollup(pool: ConnectionPool, granularity: Granularity, since: dt.datetime, until: dt.datetime) -> None:
    """Recompute every ``granularity`` bucket overlapping [since, until) from the raw events."""
    start = _floor(since, granularity)
    end = _floor(until, granularity)
    if end < until:
        end += granularity.width
    query = sql.SQL(load_sql("rollup")).format(table=sql.Identifier(granularity.table))
    with translate_errors(), pool.connection() as conn:
        conn.execute(query, {"unit": granularity.value, "start": start, "end": end})


def rollup_recent(pool: ConnectionPool, granularity: Granularity, now: dt.datetime | None = None) -> None:
    """Refresh the current and the previous bucket (what the recorder runs periodically)."""
    now = now or _utc_now()
    rollup(pool, granularity, now - granularity.width, now)


def aggregates(
    pool: ConnectionPool,
    granularity: Granularity,
    since: dt.datetime,
    until: dt.datetime | None = None,
    *,
    queue: str | None = None,
    name: str | None = None,
) -> list[AggregateRow]:
    """Stored aggregate buckets in [since, until)."""
    query = sql.SQL(load_sql("aggregates")).format(table=sql.Identifier(Granularity(granularity).table))
    params = {"since": since, "until": until or _utc_now(), "queue": queue, "name": name}
    with translate_errors(), pool.connection() as conn:
        return conn.cursor(row_factory=class_row(AggregateRow)).execute(query, params).fetchall()
