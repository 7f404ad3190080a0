"""Forward-only numbered migrations (``sql/NNNN_name.sql``), applied by ``jobqueue migrate``.

Idempotent: applied versions are kept in ``schema_migrations``; a session advisory lock serialises
concurrent runs (several pods may start ``migrate`` at once). Never run implicitly at start-up.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from jobqueue.errors import RecordError
from jobqueue.record.db import translate_errors

log = logging.getLogger(__name__)

_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")
# Arbitrary constant shared by every jobqueue process: the key of the migration advisory lock.
_LOCK_KEY = 0x6A6F62_7175  # "jobqu"

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the file, to detect an applied migration that was edited afterwards."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """Every migration shipped with the package, in version order."""
    found = []
    for entry in resources.files("jobqueue.record").joinpath("sql").iterdir():
        match = _FILE.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RecordError(f"duplicate migration versions: {versions}")
    return found


def migrate(database_url: str) -> list[int]:
    """Apply every pending migration, each in its own transaction; returns the versions applied now."""
    applied_now: list[int] = []
    with translate_errors(), psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(_BOOKKEEPING)
            rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
            applied = {int(version): str(checksum) for version, checksum in rows}
            for migration in available_migrations():
                if migration.version in applied:
                    if applied[migration.version] != migration.checksum:
                        raise RecordError(
                            f"migration {migration.version:04d}_{migration.name} was changed after it "
                            "was applied; migrations are forward-only: add a new one instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                log.info("applied migration %04d_%s", migration.version, migration.name)
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def applied_versions(database_url: str) -> list[int]:
    """Versions recorded in ``schema_migrations`` (empty when the database was never migrated)."""
    with translate_errors(), psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        if not exists or exists[0] is None:
            return []
        return [int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
