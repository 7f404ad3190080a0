"""The record for the local stack (``jobqueue up`` / ``make run``): an embedded PostgreSQL, migrated, with a
recorder thread. The same parts production uses, on one machine."""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import tempfile
import threading
from pathlib import Path

from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from jobqueue.embedded.postgres_server import PostgresServer, world_searchable
from jobqueue.errors import ConfigurationError
from jobqueue.record.maintenance import build_recorder
from jobqueue.record.migrate import migrate
from jobqueue.record.recorder import Recorder
from jobqueue.record.settings import RecordSettings
from jobqueue.settings import Settings

log = logging.getLogger(__name__)

DATABASE = "jobqueue"
PASSWORD_FILE = "postgres.password"  # noqa: S105 - a file name, not a password


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


def forget_orphaned_cluster(data_dir: Path, cluster_home: Path) -> None:
    """Make sure a cluster and the password kept in ``data_dir`` belong together, before either is used.

    The password lives in the data dir and the cluster, for root, in a directory under the temp dir
    (:func:`local_data_dir`). Deleting the data dir (``rm -rf .jobqueue``: starting afresh) leaves that
    cluster behind, made with a password nobody has any more: the next ``jobqueue up`` made a new password
    and could never log in. Such a cluster is removed, as the data dir it belonged to was. A cluster
    inside the data dir whose password file alone is gone is the user's data: refused, not removed."""
    pgdata = cluster_home / "pgdata"
    if (data_dir / PASSWORD_FILE).exists() or not (pgdata / "PG_VERSION").exists():
        return
    if cluster_home == data_dir / "postgres":
        raise ConfigurationError(
            f"{data_dir / PASSWORD_FILE} is gone, so the record's database in {pgdata} cannot be opened: "
            f"restore the file, or delete {pgdata} to start a new record"
        )
    log.warning("removing the record of an earlier %s, whose data dir was deleted: %s", data_dir, pgdata)
    shutil.rmtree(pgdata)


def local_password(data_dir: Path) -> str:
    """The local cluster's superuser password: made once, kept in ``data_dir`` readable by us alone (the
    cluster outlives one ``jobqueue up``, so its password must too)."""
    path = data_dir / PASSWORD_FILE
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(24))
    os.chmod(path, 0o600)
    return path.read_text().strip()


class LocalRecord:
    """Embedded PostgreSQL (password authentication) + migrations + a recorder thread; ``stop()`` undoes
    it all."""

    def __init__(self, data_dir: Path, settings: Settings) -> None:
        self.data_dir = data_dir
        cluster_home = local_data_dir(data_dir)
        forget_orphaned_cluster(data_dir, cluster_home)
        self.server = PostgresServer(cluster_home, password=local_password(data_dir))
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
        try:
            self.server.start()
        except ConfigurationError as exc:
            if "refused the password" not in str(exc):
                raise
            # Its password file was replaced: the record it guarded cannot be opened any more.
            raise ConfigurationError(
                f"{exc}; delete {self.data_dir} to start a new local stack (its record goes with it)"
            ) from None
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
