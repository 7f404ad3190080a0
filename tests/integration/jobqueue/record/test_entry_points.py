"""`jobqueue migrate` and `jobqueue recorder` as processes, and worker snapshots from real workers."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from jobqueue import Client
from jobqueue.embedded.postgres_server import PostgresServer
from jobqueue.record.analytics import Granularity, aggregates
from jobqueue.record.maintenance import build_recorder, snapshot_workers
from jobqueue.record.migrate import applied_versions, available_migrations
from jobqueue.record.settings import RecordSettings

pytestmark = pytest.mark.timeout(90)


def jobqueue_env(client: Client, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "JOBQUEUE_REDIS_URL": client.settings.redis_url.get_secret_value(),
        "JOBQUEUE_KEY_PREFIX": client.settings.key_prefix,
        "JOBQUEUE_DATABASE_URL": database_url,
        "JOBQUEUE_RECORD_BLOCK_MS": "100",
        "JOBQUEUE_RECORD_DISCOVER_INTERVAL_SECONDS": "0.1",
    }


def test_migrate_command_is_idempotent(client: Client, postgres_server: PostgresServer) -> None:
    url = postgres_server.create_database(f"cli_{uuid.uuid4().hex[:8]}")
    for expected in ("applied migrations", "up to date"):
        done = subprocess.run(
            [sys.executable, "-m", "jobqueue", "migrate"],
            env=jobqueue_env(client, url),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout
    assert applied_versions(url) == [m.version for m in available_migrations()]


def test_recorder_command_records_and_stops_cleanly_on_sigterm(
    client: Client, database_url: str, pg_pool: ConnectionPool
) -> None:
    recorder = subprocess.Popen(
        [sys.executable, "-m", "jobqueue", "recorder", "--consumer", "cli-test"],
        env=jobqueue_env(client, database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        handles = [client.enqueue("add", [i, i]) for i in range(25)]

        def recorded() -> bool:
            with pg_pool.connection() as conn:
                row: Any = conn.execute("SELECT count(*) FROM tasks WHERE status = 'QUEUED'").fetchone()
            return bool(row[0] == len(handles))

        wait_until(recorded, timeout=30)
    finally:
        recorder.send_signal(signal.SIGTERM)
        output, _ = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, output


def test_worker_heartbeats_are_snapshotted(
    client: Client, pg_pool: ConnectionPool, start_worker: Callable[..., Any]
) -> None:
    start_worker("--pool", "thread", "--concurrency", "3", "--worker-id", "snap-worker")
    wait_until(client.list_workers, timeout=20)
    assert snapshot_workers(client, pg_pool) == 1
    with pg_pool.connection() as conn:
        row = conn.execute("SELECT id, concurrency, queues, pid > 0 FROM workers").fetchone()
    assert row == ("snap-worker", 3, ["default"], True)


def test_a_built_recorder_runs_rollups_between_batches(client: Client, database_url: str) -> None:
    for i in range(3):
        client.enqueue("add", [i, i])
    settings = client.settings.model_copy(update={"database_url": SecretStr(database_url)})
    recorder, pool = build_recorder(settings, RecordSettings(block_ms=50), redis_conn=client.redis)
    try:
        pool.wait(10)
        assert recorder.run_once(block=False) == 3
        [row] = aggregates(pool, Granularity.HOUR, dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
        assert (row.queue, row.name, row.enqueued) == ("default", "add", 3)
        [day] = aggregates(pool, Granularity.DAY, dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
        assert day.enqueued == 3
    finally:
        pool.close()
