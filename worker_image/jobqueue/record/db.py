"""The boundary with psycopg: the connection pool, SQL files, and translation of driver errors."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import LiteralString

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from jobqueue.errors import ConfigurationError, JobQueueError, RecordError, RecordUnavailable

# Errors after which the same statement may succeed if simply run again.
_TRANSIENT = (
    psycopg.OperationalError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.AdminShutdown,
    PoolTimeout,
)


@cache
def load_sql(name: str) -> LiteralString:
    """The text of ``sql/queries/<name>.sql`` (package data); cached, the files never change at run time.

    Typed as a literal: the files ship with the package, so no user text can reach a statement this way.
    """
    path = resources.files("jobqueue.record").joinpath("sql", "queries", f"{name}.sql")
    return path.read_text(encoding="utf-8")  # type checkers that track LiteralString: see docstring


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Turn psycopg errors into jobqueue errors at the boundary."""
    try:
        yield
    except JobQueueError:
        raise
    except _TRANSIENT as exc:
        raise RecordUnavailable(f"PostgreSQL unavailable: {exc}") from exc
    except psycopg.Error as exc:
        raise RecordError(f"PostgreSQL error: {exc}") from exc


def open_pool(
    database_url: str | None,
    min_size: int = 1,
    max_size: int = 4,
    timeout: float = 10.0,
    reconnect_timeout: float = 5.0,
) -> ConnectionPool:
    """An open connection pool. Connections are checked before each use, so a pool outlives a server
    restart: broken connections are replaced instead of handed out. ``timeout``: how long a caller
    waits for a connection before RecordUnavailable (short for the recorder, which retries anyway)."""
    if not database_url:
        raise ConfigurationError("database_url is not set (JOBQUEUE_DATABASE_URL)")
    pool = ConnectionPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        check=ConnectionPool.check_connection,
        kwargs={"connect_timeout": 5},
        timeout=timeout,
        # psycopg_pool retries a failed connection with doubling delays (1, 2, 4, ... s) until this
        # timeout. Left at its default (5 min), a pool could wait half a minute after PostgreSQL came
        # back; a short one gives up early and the next request starts a fresh, immediate attempt.
        reconnect_timeout=reconnect_timeout,
        name="jobqueue-record",
    )
    # Do not wait for the first connection: the recorder must start (and wait in its retry loop) even
    # while PostgreSQL is down.
    pool.open(wait=False)
    return pool
