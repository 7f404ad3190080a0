"""Periodic jobs the recorder runs between batches (worker snapshots, rollups, retention), the schedule
run log, and the wiring of ``jobqueue recorder`` / ``jobqueue migrate``."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
from collections.abc import Callable
from types import FrameType

import redis
from psycopg_pool import ConnectionPool

from jobqueue.broker.client import Client
from jobqueue.broker.redis_io import connect
from jobqueue.errors import ConfigurationError
from jobqueue.models import WorkerState
from jobqueue.record.analytics import Granularity, rollup_recent
from jobqueue.record.db import load_sql, open_pool, translate_errors
from jobqueue.record.gc_tuning import tune_garbage_collector
from jobqueue.record.migrate import migrate
from jobqueue.record.recorder import Recorder
from jobqueue.record.retention import prune
from jobqueue.record.settings import RecordSettings
from jobqueue.settings import Settings

log = logging.getLogger(__name__)


def snapshot_workers(client: Client, pool: ConnectionPool) -> int:
    """Copy the heartbeat of every live worker from Redis into ``workers``; returns how many."""
    workers = client.list_workers()
    if not workers:
        return 0
    params: dict[str, list[object]] = {
        "id": [w.id for w in workers],
        "host": [w.host for w in workers],
        "pid": [w.pid for w in workers],
        "queues": [",".join(w.queues) for w in workers],
        "concurrency": [w.concurrency for w in workers],
        "status": [None if w.status is WorkerState.UNKNOWN else w.status.value for w in workers],
        "processed": [w.processed for w in workers],
        "started_at": [w.started_at for w in workers],
        "heartbeat_at": [w.heartbeat_at or 0.0 for w in workers],
    }
    with translate_errors(), pool.connection() as conn:
        conn.execute(load_sql("upsert_workers"), params)
    return len(workers)


def record_schedule_run(
    pool: ConnectionPool,
    schedule: str,
    fire_time: dt.datetime,
    status: str,
    *,
    task_id: str | None = None,
    detail: str | None = None,
) -> None:
    """Log one cron fire (fired / skipped / missed); idempotent per (schedule, fire_time)."""
    params = {
        "schedule": schedule,
        "fire_time": fire_time,
        "task_id": task_id,
        "status": status,
        "detail": detail,
    }
    with translate_errors(), pool.connection() as conn:
        conn.execute(load_sql("insert_schedule_run"), params)


def periodic_jobs(
    client: Client, pool: ConnectionPool, options: RecordSettings
) -> list[tuple[float, Callable[[], object]]]:
    """The (interval, job) pairs a recorder runs between batches. Every job is idempotent, so several
    recorders running them is only redundant work."""

    def workers() -> object:
        return snapshot_workers(client, pool)

    def hourly() -> object:
        rollup_recent(pool, Granularity.HOUR)
        return None

    def daily() -> object:
        rollup_recent(pool, Granularity.DAY)
        return None

    def retention() -> object:
        return prune(
            pool, options.raw_retention_days, options.aggregate_retention_days, options.prune_batch_size
        )

    return [
        (options.workers_interval_seconds, workers),
        (options.rollup_interval_seconds, hourly),
        # A day's percentiles read a day of events: refreshed less often than the hour's.
        (options.rollup_interval_seconds * 15, daily),
        (options.retention_interval_seconds, retention),
    ]


def build_recorder(
    settings: Settings,
    options: RecordSettings,
    redis_conn: redis.Redis | None = None,
    consumer: str | None = None,
) -> tuple[Recorder, ConnectionPool]:
    """A recorder with its pool and periodic jobs; the caller closes the pool after run() returns."""
    url = settings.database_url.get_secret_value() if settings.database_url else None
    pool = open_pool(url, min_size=1, max_size=options.pool_size, timeout=options.pool_timeout_seconds)
    conn = redis_conn or connect(settings)
    client = Client(settings, conn)
    recorder = Recorder(
        settings, options, conn, pool, consumer=consumer, periodic=periodic_jobs(client, pool, options)
    )
    return recorder, pool


def run_recorder(settings: Settings, options: RecordSettings, consumer: str | None = None) -> int:
    """Entry point of ``jobqueue recorder``: record until SIGTERM / SIGINT, then exit 0."""
    if options.niceness:
        os.nice(options.niceness)
    recorder, pool = build_recorder(settings, options, consumer=consumer)
    tune_garbage_collector()  # this process only records

    def handler(signum: int, frame: FrameType | None) -> None:
        recorder.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    try:
        recorder.run()
    finally:
        pool.close()
    return 0


def run_migrate(settings: Settings) -> list[int]:
    """Entry point of ``jobqueue migrate``: apply pending migrations to JOBQUEUE_DATABASE_URL."""
    url = settings.database_url.get_secret_value() if settings.database_url else None
    if not url:
        raise ConfigurationError("JOBQUEUE_DATABASE_URL is not set")
    return migrate(url)
