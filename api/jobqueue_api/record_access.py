"""The API's optional connection to the PostgreSQL record.

The record is optional: without ``JOBQUEUE_DATABASE_URL`` (or while PostgreSQL is down) only the history
and analytics routes answer 503; task submission and every Redis-backed route never touch it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from psycopg_pool import ConnectionPool

from jobqueue.errors import RecordError
from jobqueue.record.db import open_pool, translate_errors
from jobqueue.record.queries import RecordQueries
from jobqueue_api.errors import ApiError

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a request waits for a PostgreSQL connection before answering 503: short, because a client
# retrying after Retry-After is better than a request hanging while the database is away.
POOL_TIMEOUT_SECONDS = 2.0
PING_TIMEOUT_SECONDS = 2.0
RETRY_AFTER = "10"
# Documented in the OpenAPI spec of every record route, so clients (and fuzzers) expect it.
RECORD_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {"description": "the PostgreSQL record is not configured or unreachable (with Retry-After)"}
}


class RecordAccess:
    """The pool (opened at start-up, closed at shutdown) and the queries built on it."""

    def __init__(self, database_url: str | None) -> None:
        self._url = database_url
        self._pool: ConnectionPool | None = None

    @property
    def configured(self) -> bool:
        """Whether a database URL was given at all."""
        return bool(self._url)

    def open(self) -> None:
        """Start the pool without waiting for a connection: the API must start while PostgreSQL is down."""
        if self._url and self._pool is None:
            self._pool = open_pool(self._url, min_size=1, max_size=4, timeout=POOL_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Close the pool and its connections."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    @property
    def pool(self) -> ConnectionPool:
        """The open pool; 503 when no database is configured (or the app has not started)."""
        if self._pool is None:
            raise ApiError(
                503,
                "record_not_configured",
                "the PostgreSQL record is not configured (JOBQUEUE_DATABASE_URL)",
                headers={"Retry-After": RETRY_AFTER},
            )
        return self._pool

    @property
    def queries(self) -> RecordQueries:
        """Search and history queries over the pool."""
        return RecordQueries(self.pool)

    async def run(self, call: Callable[[], T]) -> T:
        """Run a blocking record call off the event loop (psycopg's sync pool, shared with the CLI code)."""
        return await asyncio.to_thread(call)

    async def ping(self) -> str:
        """'up', 'down' or 'not_configured', for /readyz."""
        if self._pool is None:
            return "not_configured" if not self.configured else "down"
        pool = self._pool

        def select_one() -> None:
            with translate_errors(), pool.connection(timeout=PING_TIMEOUT_SECONDS) as conn:
                conn.execute("SELECT 1")

        try:
            await asyncio.to_thread(select_one)
        except RecordError as exc:
            log.warning("PostgreSQL is not reachable: %s", exc)
            return "down"
        return "up"


def get_record(request: Request) -> RecordAccess:
    """The app's RecordAccess."""
    record: RecordAccess = request.app.state.record
    return record
