"""Migrations against a real PostgreSQL: applied once, idempotent, forward-only."""

from __future__ import annotations

import uuid
from dataclasses import replace

import psycopg
import pytest

from jobqueue.embedded.postgres_server import PostgresServer
from jobqueue.errors import RecordError, RecordUnavailable
from jobqueue.record import migrate as migrate_module
from jobqueue.record.migrate import applied_versions, available_migrations, migrate

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"m_{uuid.uuid4().hex[:10]}")


def test_migrate_applies_every_migration_once(empty_database: str) -> None:
    versions = [m.version for m in available_migrations()]
    assert applied_versions(empty_database) == []
    assert migrate(empty_database) == versions
    assert migrate(empty_database) == []
    assert applied_versions(empty_database) == versions
    with psycopg.connect(empty_database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {
        "tasks",
        "task_events",
        "dead_letters",
        "workers",
        "schedule_runs",
        "metrics_hourly",
        "metrics_daily",
        "schema_migrations",
    } <= tables


def test_an_edited_applied_migration_is_refused(empty_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate(empty_database)
    original = available_migrations()
    edited = [replace(original[0], sql=original[0].sql + "\n-- edited\n"), *original[1:]]
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: edited)
    with pytest.raises(RecordError, match="forward-only"):
        migrate(empty_database)


def test_an_unreachable_database_is_a_typed_error() -> None:
    with pytest.raises(RecordUnavailable):
        migrate("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=1")


def test_0004_moves_recorded_succeeded_events_onto_their_task_rows_and_the_log_keeps_every_event(
    empty_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record written before 0004 (every event a task_events row) reads the same through
    task_event_log afterwards: no event lost, none counted twice."""
    before = [m for m in available_migrations() if m.version < 4]
    monkeypatch.setattr(migrate_module, "available_migrations", lambda: before)
    migrate(empty_database)
    monkeypatch.undo()
    stream = "jq:{default}:events"
    events = [  # (task, entry_ms, event, attempt, worker, duration_ms)
        ("default.a", 1000, "enqueued", None, None, None),
        ("default.a", 1001, "started", 1, "w1", None),
        ("default.a", 1002, "succeeded", 1, None, 1),
        ("default.b", 1003, "enqueued", None, None, None),  # still running
        ("default.b", 1004, "started", 1, "w1", None),
        ("default.c", 1005, "succeeded", 1, None, 4),  # its task row was pruned: the row stays
    ]
    log = """SELECT stream, entry_ms, entry_seq, task_id, event, ts, attempt, worker, error, duration_ms,
                    data FROM {} ORDER BY entry_ms"""
    with psycopg.connect(empty_database) as conn:
        for task_id, ms, event, attempt, worker, duration in events:
            conn.execute(
                """INSERT INTO task_events (stream, entry_ms, entry_seq, task_id, queue, event, ts, attempt,
                       worker, duration_ms, data)
                   VALUES (%s, %s, 0, %s, 'default', %s, to_timestamp(%s / 1000.0), %s, %s, %s, '{}')""",
                (stream, ms, task_id, event, ms, attempt, worker, duration),
            )
        conn.execute(
            """INSERT INTO tasks (id, queue, name, status, attempts, worker, enqueued_at, started_at,
                   completed_at, duration_ms, last_event_ms, last_event_seq)
               VALUES ('default.a', 'default', 'add', 'SUCCESS', 1, 'w1', to_timestamp(1),
                       to_timestamp(1.001), to_timestamp(1.002), 1, 1002, 0),
                      ('default.b', 'default', 'add', 'RUNNING', 1, 'w1', to_timestamp(1.003),
                       to_timestamp(1.004), NULL, NULL, 1004, 0)"""
        )
        recorded = conn.execute(log.format("task_events").encode()).fetchall()

    assert migrate(empty_database) == [m.version for m in available_migrations() if m.version >= 4]

    with psycopg.connect(empty_database) as conn:
        assert conn.execute(log.format("task_event_log").encode()).fetchall() == recorded
        kept = conn.execute("SELECT task_id, event FROM task_events ORDER BY entry_ms").fetchall()
        [stream_of_a] = conn.execute("SELECT stream FROM tasks WHERE id = 'default.a'").fetchone() or [None]
    assert ("default.a", "succeeded") not in kept and ("default.c", "succeeded") in kept
    assert len(kept) == 5 and stream_of_a == stream
