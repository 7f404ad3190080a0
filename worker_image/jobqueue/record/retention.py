"""Retention: prune raw rows after ``raw_retention_days`` and aggregates after
``aggregate_retention_days``, in small batches, each its own short transaction."""

from __future__ import annotations

import datetime as dt
import logging
from functools import cache
from typing import LiteralString

from psycopg_pool import ConnectionPool

from jobqueue.errors import ValidationError
from jobqueue.record.db import load_sql, translate_errors

log = logging.getLogger(__name__)

RAW_TABLES = ("task_events", "tasks", "dead_letters", "workers", "schedule_runs")
AGGREGATE_TABLES = ("metrics_hourly", "metrics_daily")


@cache
def _statements() -> dict[str, LiteralString]:
    """The named sections of retention.sql."""
    sections: dict[str, LiteralString] = {}
    for chunk in load_sql("retention").split("-- name: ")[1:]:
        name, _, body = chunk.partition("\n")
        sections[name.strip()] = body.strip()
    return sections


def prune_table(pool: ConnectionPool, table: str, cutoff: dt.datetime, batch: int) -> int:
    """Delete rows of ``table`` older than ``cutoff``, ``batch`` rows per transaction; returns the count."""
    statement = _statements().get(table)
    if statement is None:
        raise ValidationError("table", f"no retention rule for {table!r}")
    total = 0
    while True:
        with translate_errors(), pool.connection() as conn:
            deleted = conn.execute(statement, {"cutoff": cutoff, "batch": batch}).rowcount
        total += deleted
        if deleted < batch:
            return total


def prune(
    pool: ConnectionPool,
    raw_days: float = 7.0,
    aggregate_days: float = 30.0,
    batch: int = 5000,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """Prune every table by its retention; returns rows deleted per table."""
    if raw_days <= 0 or aggregate_days <= 0 or batch <= 0:
        raise ValidationError("retention", "days and batch size must be positive")
    now = now or dt.datetime.now(dt.UTC)
    deleted = {t: prune_table(pool, t, now - dt.timedelta(days=raw_days), batch) for t in RAW_TABLES}
    for table in AGGREGATE_TABLES:
        deleted[table] = prune_table(pool, table, now - dt.timedelta(days=aggregate_days), batch)
    if any(deleted.values()):
        log.info("retention pruned %s", deleted)
    return deleted
