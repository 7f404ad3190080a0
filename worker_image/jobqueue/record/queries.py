"""Read side of the record, for the REST API and the UI: task search, a task's history, dead letters.

Every filter is a bound parameter; the only parts of a statement chosen in Python (sort column, time
column, direction) come from enums and are composed as identifiers, never from user text.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from psycopg import sql
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from jobqueue.errors import ValidationError
from jobqueue.models import TaskStatus
from jobqueue.record.db import load_sql, translate_errors

T = TypeVar("T")

MAX_PAGE = 1000


class SortKey(enum.StrEnum):
    """Columns a task search may be sorted by."""

    ENQUEUED_AT = "enqueued_at"
    STARTED_AT = "started_at"
    COMPLETED_AT = "completed_at"
    DURATION = "duration_ms"
    NAME = "name"


class TimeField(enum.StrEnum):
    """Which time a search's [since, until) range applies to."""

    ENQUEUED_AT = "enqueued_at"
    COMPLETED_AT = "completed_at"


@dataclass(frozen=True)
class TaskSearch:
    """Filters, order and page of a task search; every filter is optional."""

    statuses: Sequence[TaskStatus | str] = ()
    name: str | None = None
    queue: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    time_field: TimeField = TimeField.ENQUEUED_AT
    error_contains: str | None = None
    sort: SortKey = SortKey.ENQUEUED_AT
    descending: bool = True
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class TaskRow:
    """One task as recorded in PostgreSQL."""

    id: str
    queue: str
    name: str | None
    priority: str | None
    status: str | None
    args: Any
    kwargs: Any
    result: Any
    error: str | None
    traceback: str | None
    attempts: int
    max_retries: int | None
    retries: int
    lost_leases: int
    replays: int
    worker: str | None
    cancel_reason: str | None
    dead_letter_reason: str | None
    enqueued_at: dt.datetime | None
    eta: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    duration_ms: int | None


@dataclass(frozen=True)
class EventRow:
    """One recorded transition."""

    event: str
    ts: dt.datetime
    attempt: int | None
    worker: str | None
    error: str | None
    duration_ms: int | None
    data: dict[str, Any]


@dataclass(frozen=True)
class DeadLetterRow:
    """One time a task was dead-lettered."""

    task_id: str
    dead_at: dt.datetime
    queue: str
    name: str | None
    status: str
    reason: str | None
    error: str | None
    attempt: int | None
    replayed_at: dt.datetime | None
    purged_at: dt.datetime | None


@dataclass(frozen=True)
class ScheduleRunRow:
    """What happened to one fire time of a schedule: fired (``task_id``; ``replaced_task_id`` when the
    Replace policy cancelled the previous task), skipped (Forbid), missed (``missed`` fire times from
    ``fire_time`` on, past the starting deadline or the catch-up limit) or failed (``detail`` says why)."""

    schedule: str
    fire_time: dt.datetime
    status: str
    task_id: str | None
    replaced_task_id: str | None
    missed: int | None
    detail: str | None
    handled_at: dt.datetime | None


class ScheduleRunStatus(enum.StrEnum):
    """What happened to one fire time of a schedule."""

    FIRED = "fired"
    SKIPPED = "skipped"  # Forbid policy: the previous fire's task was still running
    MISSED = "missed"  # past the starting deadline, or beyond the catch-up limit
    FAILED = "failed"  # claimed, but its task could not be enqueued


@dataclass(frozen=True)
class TaskHistory:
    """A task with every recorded transition, and the failed attempts among them (retry history)."""

    task: TaskRow
    events: list[EventRow]
    failures: list[EventRow] = field(default_factory=list)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results; ``has_more`` tells whether a next page exists."""

    items: list[T]
    limit: int
    offset: int
    has_more: bool


def contains_pattern(text: str | None) -> str | None:
    """An ILIKE pattern matching ``text`` anywhere, with the caller's % and _ taken literally."""
    if text is None or text == "":
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"must be between 1 and {MAX_PAGE}")
    if offset < 0:
        raise ValidationError("offset", "must be >= 0")


E = TypeVar("E", bound=enum.Enum)


def _statuses(kind: type[E], values: Sequence[E | str]) -> list[Any] | None:
    """The filter's status values checked against ``kind``; None (no filter) when empty."""
    try:
        return [kind(v).value for v in values] or None
    except ValueError as exc:
        raise ValidationError("statuses", str(exc)) from exc


def _aware(value: dt.datetime | None, name: str) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationError(name, "must be timezone-aware")
    return value


class RecordQueries:
    """Queries over the record; one instance per process, sharing the pool it is given."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def search_tasks(self, search: TaskSearch) -> Page[TaskRow]:
        """Tasks matching every given filter, sorted and paged."""
        _check_page(search.limit, search.offset)
        statuses = _statuses(TaskStatus, search.statuses)
        query = sql.SQL(load_sql("search_tasks")).format(
            time_column=sql.Identifier(TimeField(search.time_field).value),
            order_column=sql.Identifier(SortKey(search.sort).value),
            direction=sql.SQL("DESC" if search.descending else "ASC"),
        )
        params = {
            "statuses": statuses,
            "name": search.name,
            "queue": search.queue,
            "since": _aware(search.since, "since"),
            "until": _aware(search.until, "until"),
            "error_pattern": contains_pattern(search.error_contains),
        }
        return self._page(query, TaskRow, params, search.limit, search.offset)

    def _page(
        self, query: str | sql.Composed, row: type[T], params: dict[str, Any], limit: int, offset: int
    ) -> Page[T]:
        """One page of ``query``: it reads one row more than the page to know whether another follows."""
        with translate_errors(), self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(row))
            rows = cur.execute(query, {**params, "limit": limit + 1, "offset": offset}).fetchall()
        return Page(rows[:limit], limit, offset, len(rows) > limit)

    def get_task(self, task_id: str) -> TaskRow | None:
        """One task, or None when it was never recorded (or was pruned)."""
        with translate_errors(), self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(TaskRow))
            return cur.execute(load_sql("get_task"), {"id": task_id}).fetchone()

    def task_history(self, task_id: str) -> TaskHistory | None:
        """A task and all its recorded transitions in order; None when it was never recorded."""
        task = self.get_task(task_id)
        if task is None:
            return None
        with translate_errors(), self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(EventRow))
            events = cur.execute(load_sql("task_history"), {"id": task_id}).fetchall()
        failures = [e for e in events if e.event in ("retrying", "dead_lettered", "lease_lost")]
        return TaskHistory(task, events, failures)

    def dead_letters(
        self,
        *,
        queue: str | None = None,
        name: str | None = None,
        reason: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        error_contains: str | None = None,
        include_closed: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[DeadLetterRow]:
        """Dead letters, newest first; replayed or purged ones only with ``include_closed``."""
        _check_page(limit, offset)
        params = {
            "queue": queue,
            "name": name,
            "reason": reason,
            "since": _aware(since, "since"),
            "until": _aware(until, "until"),
            "error_pattern": contains_pattern(error_contains),
            "include_closed": include_closed,
        }
        return self._page(load_sql("search_dead_letters"), DeadLetterRow, params, limit, offset)

    def schedule_runs(
        self,
        schedule: str,
        *,
        statuses: Sequence[ScheduleRunStatus | str] = (),
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[ScheduleRunRow]:
        """The recorded runs of one schedule, newest fire time first; [since, until) applies to the fire
        time. The record outlives the schedule: runs of a deleted schedule are still listed."""
        _check_page(limit, offset)
        params = {
            "schedule": schedule,
            "statuses": _statuses(ScheduleRunStatus, statuses),
            "since": _aware(since, "since"),
            "until": _aware(until, "until"),
        }
        return self._page(load_sql("schedule_runs"), ScheduleRunRow, params, limit, offset)
