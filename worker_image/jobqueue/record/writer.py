"""Write one batch of stream events to PostgreSQL in one transaction, idempotently.

Events and folded task deltas are COPied (binary) into per-connection staging tables, then merged into
the real tables with one statement each: a few round trips per batch whatever its size. COPY rows are
encoded by psycopg's C code; the ``unnest(arrays)`` parameters used before were encoded value by value
in Python, and that was a fifth of the recorder's CPU (profiled with py-spy, see docs/record.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from jobqueue.record.db import load_sql, translate_errors
from jobqueue.record.events import ScheduleRunEvent, StreamEvent, event_data, fold

_EVENT_COLUMNS = (
    "stream", "entry_ms", "entry_seq", "task_id", "queue", "event", "ts_ms", "attempt", "worker", "error",
    "duration_ms", "data",
)  # fmt: skip
_EVENT_TYPES = (
    "text", "int8", "int8", "text", "text", "text", "int8", "int4", "text", "text", "int8", "text",
)  # fmt: skip
_TASK_COLUMNS = (
    "id", "queue", "name", "priority", "args", "kwargs", "parents", "max_retries", "timeout",
    "soft_timeout", "enqueued_at_ms", "eta_ms", "status", "worker", "started_at_ms", "completed_at_ms",
    "duration_ms", "result", "error", "traceback", "cancel_reason", "dead_letter_reason", "attempts",
    "retries", "lost_leases", "replays",
)  # fmt: skip
# Columns that may hold arbitrary text (exception messages); JSON payloads never hold a raw NUL.
_FREE_TEXT = tuple(
    _TASK_COLUMNS.index(n)
    for n in ("name", "worker", "error", "traceback", "cancel_reason", "dead_letter_reason")
)
_TASK_TYPES = (
    "text", "text", "text", "text", "text", "text", "text", "int4", "float8", "float8", "int8", "int8",
    "text", "text", "int8", "int8", "int8", "text", "text", "text", "text", "text", "int4", "int4", "int4",
    "int4", "int8", "int8",
)  # fmt: skip


@dataclass(frozen=True)
class BatchResult:
    """What a batch did: events recorded now, and events that were already recorded before."""

    inserted: int
    duplicates: int


def _clean(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; an error message from a C extension may contain one.
    return value.replace("\x00", "\\u0000") if value and "\x00" in value else value


def _event_rows(events: Sequence[StreamEvent]) -> list[tuple[Any, ...]]:
    rows = []
    for e in events:
        fields = e.fields
        attempt, duration = fields.get("token"), fields.get("duration_ms")
        rows.append(
            (
                e.stream, *e.position, e.task_id, e.queue, e.event, e.ts_ms,
                int(attempt) if attempt else None,
                fields.get("worker") or None,
                _clean(fields.get("error") or None),
                int(duration) if duration else None,
                _clean(event_data(e)),
            )
        )  # fmt: skip
    return rows


def _copy(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """COPY ``rows`` into the staging ``table`` (binary: psycopg encodes each row in C)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def write_batch(
    conn: psycopg.Connection[Any],
    events: Sequence[StreamEvent],
    schedule_runs: Sequence[ScheduleRunEvent] = (),
) -> BatchResult:
    """Record ``events`` and fold the new ones into tasks and dead letters, and record ``schedule_runs``;
    one transaction, committed before returning.

    Safe to call again with the same events (after a crash before XACK, or from another recorder): events
    already in ``task_events`` are skipped, and only events inserted now change any other table; a
    schedule run already recorded for its (schedule, fire time) is skipped too.
    """
    if not events and not schedule_runs:
        return BatchResult(0, 0)
    inserted_runs = 0
    with translate_errors(), conn.transaction():
        new: list[StreamEvent] = []
        if events:
            conn.execute(load_sql("recorder_staging"))
            _copy(conn, "staged_events", _EVENT_COLUMNS, _EVENT_TYPES, _event_rows(events))
            skipped = conn.execute(load_sql("insert_events")).fetchall()
            if skipped:
                known = {(str(s), int(ms), int(seq)) for s, ms, seq in skipped}
                new = [e for e in events if (e.stream, *e.position) not in known]
            else:
                new = list(events)
            _apply(conn, new)
        if schedule_runs:
            inserted_runs = len(
                conn.execute(load_sql("insert_schedule_runs"), _run_params(schedule_runs)).fetchall()
            )
    total = len(events) + len(schedule_runs)
    return BatchResult(len(new) + inserted_runs, total - len(new) - inserted_runs)


def _run_params(runs: Sequence[ScheduleRunEvent]) -> dict[str, list[Any]]:
    return {
        "schedule": [r.schedule for r in runs],
        "fire_ms": [r.fire_ms for r in runs],
        "task_id": [r.task_id for r in runs],
        "status": [r.status for r in runs],
        "detail": [_clean(r.detail) for r in runs],
        "missed": [r.missed for r in runs],
        "replaced_task_id": [r.replaced_task_id for r in runs],
        "ts_ms": [r.ts_ms for r in runs],
    }


def _apply(conn: psycopg.Connection[Any], new: Sequence[StreamEvent]) -> None:
    deltas = fold(new)
    if not deltas:
        return
    rows = []
    for d in deltas:
        row = [getattr(d, n) for n in _TASK_COLUMNS]
        for i in _FREE_TEXT:
            row[i] = _clean(row[i])
        rows.append((*row, *d.last_position))
    _copy(conn, "staged_tasks", (*_TASK_COLUMNS, "last_event_ms", "last_event_seq"), _TASK_TYPES, rows)
    conn.execute(load_sql("upsert_tasks"))
    dead = [e for d in deltas for e in d.dead_letters]
    if dead:
        conn.execute(
            load_sql("insert_dead_letters"),
            {
                "task_id": [e.task_id for e in dead],
                "ts_ms": [e.ts_ms for e in dead],
                "queue": [e.queue for e in dead],
                "status": [e.text_field("status") or "FAILED" for e in dead],
                "reason": [e.text_field("reason") for e in dead],
                "error": [_clean(e.text_field("error")) for e in dead],
                "attempt": [e.int_field("token") for e in dead],
            },
        )
    _mark_dead_letters(conn, new)


def _mark_dead_letters(conn: psycopg.Connection[Any], events: Sequence[StreamEvent]) -> None:
    """Close dead letters that a 'replayed' or 'purged' event follows (after the inserts, same batch)."""
    marks = [e for e in events if e.event in ("replayed", "purged")]
    if marks:
        conn.execute(
            load_sql("mark_dead_letters"),
            {
                "task_id": [e.task_id for e in marks],
                "event": [e.event for e in marks],
                "ts_ms": [e.ts_ms for e in marks],
            },
        )
