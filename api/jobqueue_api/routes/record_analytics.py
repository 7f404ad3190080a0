"""/api/v1/metrics: throughput, duration percentiles and outcome rates from the PostgreSQL record, with
live depth per priority and worker utilization from Redis; hourly and daily aggregates (read scope).

Not to be confused with ``/metrics`` (Prometheus text, live Redis state only).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.live_state import live_snapshot
from jobqueue.errors import ValidationError
from jobqueue.record.analytics import Granularity, WindowStats, aggregates, window_stats
from jobqueue_api.auth import require
from jobqueue_api.deps import get_client
from jobqueue_api.record_access import RECORD_RESPONSES, RecordAccess, get_record
from jobqueue_api.routes.record_history import Name, QueueFilter
from jobqueue_api.settings import Scope

router = APIRouter(
    prefix="/api/v1/metrics",
    tags=["metrics"],
    dependencies=[Depends(require(Scope.READ))],
    responses=RECORD_RESPONSES,
)
Record = Annotated[RecordAccess, Depends(get_record)]
Client = Annotated[AsyncClient, Depends(get_client)]
# Default ranges of the aggregate listings: a day of hourly buckets, a month of daily ones.
DEFAULT_SPAN = {Granularity.HOUR: dt.timedelta(days=1), Granularity.DAY: dt.timedelta(days=30)}


def _stats(s: WindowStats) -> dict[str, Any]:
    return {
        "queue": s.queue,
        "name": s.name,
        "enqueued": s.enqueued,
        "succeeded": s.succeeded,
        "failed": s.failed,
        "cancelled": s.cancelled,
        "retried": s.retried,
        "completed": s.completed,
        "throughput": {
            "enqueued_per_second": s.enqueued_per_second,
            "completed_per_second": s.completed_per_second,
        },
        "duration_ms": {
            "count": s.duration_count,
            "avg": s.duration_avg_ms,
            "p50": s.duration_p50_ms,
            "p95": s.duration_p95_ms,
            "p99": s.duration_p99_ms,
            "max": s.duration_max_ms,
        },
        "success_rate": s.success_rate,
        "failure_rate": s.failure_rate,
    }


@router.get("")
async def metrics(
    record: Record,
    client: Client,
    window: Annotated[int, Query(ge=1, le=30 * 86400, description="seconds, ending now")] = 3600,
    queue: QueueFilter = None,
    name: Name = None,
) -> dict[str, Any]:
    """Window stats (``totals`` for the selection, ``breakdown`` per queue and per queue + task name)
    and ``live`` state from Redis."""
    pool = record.pool
    span = dt.timedelta(seconds=window)
    rows = await record.run(lambda: window_stats(pool, span, queue=queue, name=name))
    live = await asyncio.to_thread(live_snapshot, client.sync)
    return {
        "window_seconds": window,
        "start": rows[0].start,
        "end": rows[0].end,
        "totals": _stats(rows[0]),
        "breakdown": [_stats(r) for r in rows[1:]],
        "live": {
            "queues": [dataclasses.asdict(q) for q in live.queues],
            "workers": live.workers,
            "busy_slots": live.busy_slots,
            "total_slots": live.total_slots,
            "utilization": live.utilization,
        },
    }


async def _aggregates(
    record: RecordAccess,
    granularity: Granularity,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    queue: str | None,
    name: str | None,
) -> list[dict[str, Any]]:
    pool = record.pool
    for field, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationError(field, "must be timezone-aware (add Z or an offset)")
    until = until or dt.datetime.now(dt.UTC)
    try:
        since = since or until - DEFAULT_SPAN[granularity]
    except OverflowError as exc:
        raise ValidationError("until", "is too early") from exc
    rows = await record.run(lambda: aggregates(pool, granularity, since, until, queue=queue, name=name))
    return [dataclasses.asdict(r) for r in rows]


@router.get("/hourly")
async def hourly(
    record: Record,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    queue: QueueFilter = None,
    name: Name = None,
) -> list[dict[str, Any]]:
    """Hourly buckets in [since, until) (default: the last 24 h), per queue and task name."""
    return await _aggregates(record, Granularity.HOUR, since=since, until=until, queue=queue, name=name)


@router.get("/daily")
async def daily(
    record: Record,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    queue: QueueFilter = None,
    name: Name = None,
) -> list[dict[str, Any]]:
    """Daily buckets in [since, until) (default: the last 30 days), per queue and task name."""
    return await _aggregates(record, Granularity.DAY, since=since, until=until, queue=queue, name=name)
