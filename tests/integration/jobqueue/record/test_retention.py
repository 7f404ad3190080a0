"""Retention: raw rows pruned after 7 days, aggregates after 30, in batches; live tasks kept."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from psycopg_pool import ConnectionPool
from record_helpers import add_event, drain, make_recorder

from jobqueue import Client
from jobqueue.keys import new_task_id
from jobqueue.record.analytics import Granularity, rollup
from jobqueue.record.maintenance import record_schedule_run
from jobqueue.record.retention import prune

pytestmark = pytest.mark.timeout(60)

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def finished_task(client: Client, at: dt.datetime) -> str:
    tid = new_task_id("default")
    ms = int(at.timestamp() * 1000)
    add_event(client, "default", tid, "enqueued", ms, status="QUEUED", name="job", args="[]", kwargs="{}")
    add_event(client, "default", tid, "started", ms + 1, token=1, worker="w")
    add_event(client, "default", tid, "succeeded", ms + 2, token=1, duration_ms=1, result="1")
    return tid


def count(pool: ConnectionPool, table: str) -> int:
    with pool.connection() as conn:
        row: Any = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
        return int(row[0])


def test_prune_removes_old_rows_in_batches_and_keeps_recent_ones(
    client: Client, pg_pool: ConnectionPool
) -> None:
    ancient = [finished_task(client, NOW - dt.timedelta(days=31)) for _ in range(4)]
    old = [finished_task(client, NOW - dt.timedelta(days=8)) for _ in range(3)]
    recent = [finished_task(client, NOW - dt.timedelta(days=1)) for _ in range(2)]
    waiting = new_task_id("default")  # enqueued long ago for far in the future: still live
    add_event(
        client,
        "default",
        waiting,
        "enqueued",
        int((NOW - dt.timedelta(days=9)).timestamp() * 1000),
        status="DELAYED",
        name="job",
        args="[]",
        kwargs="{}",
    )
    drain(make_recorder(client, pg_pool))
    for days in (31, 8, 1):
        at = NOW - dt.timedelta(days=days)
        rollup(pg_pool, Granularity.HOUR, at - dt.timedelta(minutes=1), at + dt.timedelta(minutes=1))
    record_schedule_run(pg_pool, "nightly", NOW - dt.timedelta(days=8), "fired", task_id=old[0])
    record_schedule_run(pg_pool, "nightly", NOW - dt.timedelta(days=1), "fired", task_id=recent[0])
    assert (count(pg_pool, "tasks"), count(pg_pool, "task_event_log"), count(pg_pool, "metrics_hourly")) == (
        10,
        28,
        3,
    )
    # Only the 'started' events have rows of their own; 'enqueued' and 'succeeded' live on the task rows.
    assert count(pg_pool, "task_events") == 9

    deleted = prune(pg_pool, raw_days=7, aggregate_days=30, batch=3, now=NOW)

    assert deleted["task_events"] == 7 and deleted["tasks"] == 7
    assert (deleted["schedule_runs"], deleted["metrics_hourly"]) == (1, 1)
    with pg_pool.connection() as conn:
        left = {r[0] for r in conn.execute(b"SELECT id FROM tasks")}
        buckets = [r[0] for r in conn.execute(b"SELECT bucket FROM metrics_hourly ORDER BY bucket")]
    assert left == {*recent, waiting}
    assert not left & {*ancient, *old}
    assert len(buckets) == 2 and buckets[0] > NOW - dt.timedelta(days=30)
    # The recent tasks' whole histories, and the waiting task's 'enqueued' event, which is kept with its
    # row (a live task keeps its record) rather than pruned by age as its own row was before 0004.
    assert count(pg_pool, "task_event_log") == 2 * 3 + 1
    assert count(pg_pool, "task_events") == 2
    # Nothing left to prune: a second run deletes nothing.
    assert not any(prune(pg_pool, raw_days=7, aggregate_days=30, batch=3, now=NOW).values())
