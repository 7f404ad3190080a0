"""The record for the local stack (``jobqueue up`` / ``make run``): an embedded PostgreSQL, migrated, with a
recorder thread. The same parts production uses, on one machine."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import tempfile
import threading
from pathlib import Path

from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from jobqueue.embedded.postgres_server import PostgresServer, world_searchable
from jobqueue.record.maintenance import build_recorder
from jobqueue.record.migrate import migrate
from jobqueue.record.recorder import Recorder
from jobqueue.record.settings import RecordSettings
from jobqueue.settings import Settings

log = logging.getLogger(__name__)

DATABASE = "jobqueue"


def local_data_dir(data_dir: Path) -> Path:
    """Where the local cluster lives: under ``data_dir``, unless we are root and the server's user cannot
    reach it (e.g. a checkout under /root), then in a per-checkout directory under the temp dir."""
    wanted = data_dir / "postgres"
    if os.geteuid() != 0 or world_searchable(wanted):
        return wanted
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:10]
    fallback = Path(tempfile.gettempdir()) / f"jobqueue-postgres-{digest}"
    fallback.mkdir(mode=0o755, exist_ok=True)
    return fallback


def local_password(data_dir: Path) -> str:
    """The local cluster's superuser password: made once, kept in ``data_dir`` readable by us alone (the
    cluster outlives one ``jobqueue up``, so its password must too)."""
    path = data_dir / "postgres.password"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    os.chmod(path, 0o600)
    return path.read_text().strip()


class LocalRecord:
    """Embedded PostgreSQL (password authentication) + migrations + a recorder thread; ``stop()`` undoes
    it all."""

    def __init__(self, data_dir: Path, settings: Settings) -> None:
        self.server = PostgresServer(local_data_dir(data_dir), password=local_password(data_dir))
        self.settings = settings
        self.recorder: Recorder | None = None
        self.pool: ConnectionPool | None = None
        self._thread: threading.Thread | None = None

    @property
    def database_url(self) -> str:
        """URL of the local record database."""
        return self.server.url(DATABASE)

    def start(self) -> LocalRecord:
        """Start PostgreSQL, apply migrations, start recording."""
        self.server.start()
        self.server.create_database(DATABASE)
        applied = migrate(self.database_url)
        if applied:
            log.info("applied migrations %s", applied)
        settings = self.settings.model_copy(update={"database_url": SecretStr(self.database_url)})
        self.recorder, self.pool = build_recorder(settings, RecordSettings())
        self._thread = threading.Thread(target=self.recorder.run, name="recorder", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop recording (unacknowledged events stay in Redis for next time), then PostgreSQL."""
        if self.recorder is not None:
            self.recorder.stop()
        if self._thread is not None:
            self._thread.join(30)
        if self.pool is not None:
            self.pool.close()
        self.server.stop()
