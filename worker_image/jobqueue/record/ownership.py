"""The recorder's own PostgreSQL session: which streams it owns, and the one connection it writes with.

Each stream is owned by one recorder at a time through a session advisory lock on
(``STREAM_LOCKS``, hashtext(stream)); every recorder also holds a shared lock on (``MEMBERS``,
hashtext(key prefix)), so the live recorders can be counted and the streams spread evenly between them.

The recorder writes its batches on this same session. That is the fencing: a recorder whose session
died (network cut, PostgreSQL restarted, the process killed) lost its locks with it, and can no longer
commit anything, because the session it would commit on is gone. A new session must take the locks
again, and reads the committed positions under them before it writes.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from jobqueue.record.db import translate_errors
from jobqueue.record.positions import Position

log = logging.getLogger(__name__)

# The first key of the recorders' advisory locks (int4): "jq" and a kind, apart from anyone else's.
STREAM_LOCKS = 0x6A710001
MEMBERS = 0x6A710002


class StreamOwnership:
    """A lazily opened PostgreSQL session holding the locks of the streams this recorder owns."""

    def __init__(
        self,
        conninfo: str | Callable[[], str],
        key_prefix: str,
        name: str = "",
        connect_timeout: float = 5.0,
    ) -> None:
        self._conninfo = conninfo
        # Shown in pg_stat_activity: which recorder holds which locks (PostgreSQL keeps 63 bytes).
        self._application_name = f"jobqueue-recorder {name}".strip()[:63]
        self._prefix = key_prefix
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def connected(self) -> bool:
        """True while the session (and so every lock taken on it) is believed alive."""
        return self._conn is not None and not self._conn.closed

    def session(self) -> psycopg.Connection[Any]:
        """The session, opened (and registered as a live recorder) if needed. RecordUnavailable while
        PostgreSQL is unreachable."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = None
        with translate_errors():
            conninfo = self._conninfo if isinstance(self._conninfo, str) else self._conninfo()
            conn = psycopg.connect(
                conninfo,
                autocommit=True,
                connect_timeout=max(1, int(self._connect_timeout)),
                application_name=self._application_name,
            )
            conn.execute("SELECT pg_advisory_lock_shared(%s, hashtext(%s))", (MEMBERS, self._prefix))
        self._conn = conn
        # A recorder dropped without close() (a test, an embedding process) still ends its session,
        # so its streams are free for the others at once rather than when the object happens to go.
        weakref.finalize(self, _close_quietly, conn)
        return conn

    def lost(self) -> None:
        """Forget the session after an error on it: its locks are, or will be, released by the server
        (closing it here makes sure)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            _close_quietly(conn)

    def close(self) -> None:
        """Release every lock (the session ends)."""
        self.lost()

    def recorders(self) -> int:
        """Live recorders of this key prefix (sessions holding the members lock), this one included."""
        with translate_errors():
            row = (
                self.session()
                .execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                    " AND classid = %s::int4::oid AND objid = hashtext(%s)::oid",
                    (MEMBERS, self._prefix),
                )
                .fetchone()
            )
        return max(1, int(row[0]) if row else 1)

    def try_take(self, stream: str) -> bool:
        """Take ``stream`` if no other recorder owns it."""
        with translate_errors():
            row = (
                self.session()
                .execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (STREAM_LOCKS, stream))
                .fetchone()
            )
        return bool(row and row[0])

    def release(self, stream: str) -> None:
        """Give ``stream`` up (between batches: everything read from it is committed)."""
        with translate_errors():
            self.session().execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (STREAM_LOCKS, stream))

    def stored(self, streams: Iterable[str]) -> dict[str, Position]:
        """The committed positions of ``streams`` (those that have one)."""
        with translate_errors():
            rows = (
                self.session()
                .execute(
                    "SELECT stream, entry_ms, entry_seq, consumed FROM record_positions"
                    " WHERE stream = ANY(%s)",
                    (list(streams),),
                )
                .fetchall()
            )
        return {str(s): Position(str(s), f"{ms}-{seq}", c) for s, ms, seq, c in rows}


def _close_quietly(conn: psycopg.Connection[Any]) -> None:
    with contextlib.suppress(psycopg.Error):  # already broken: nothing to release
        conn.close()
