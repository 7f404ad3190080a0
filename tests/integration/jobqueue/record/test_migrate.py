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
