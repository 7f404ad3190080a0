"""Write one batch of stream events to PostgreSQL in one transaction, idempotently.

The common case (no entry of the batch recorded before) takes the direct path: events are COPied
(binary) straight into ``task_events`` and the folded deltas of tasks first seen in the batch straight
into ``tasks``; only deltas of tasks already recorded go through a staging table and one merging upsert.
If any entry or task row turns out to exist already (a replay: entries recorded by a recorder of the
consumer-group protocol of before, or by a recorder that lost its stream while it wrote), the
whole transaction is rolled back and the batch is written by the exact path: everything COPied into
per-connection staging tables, entries already recorded skipped, and only the entries inserted now
folded into tasks and dead letters with one order-safe upsert. Either way one transaction, committed
with the streams' new positions (the recorder's read protocol, docs/record.md).

COPY rows are encoded by psycopg's C code; the ``unnest(arrays)`` parameters used before were encoded
value by value in Python (a fifth of the recorder's CPU, profiled with py-spy, see docs/record.md).
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import Buffer, Dumper
from psycopg.pq import Format

from jobqueue.record.db import load_sql, translate_errors
from jobqueue.record.events import (
    KEPT_ON_TASK_ROW,
    ScheduleRunEvent,
    StreamEvent,
    TaskDelta,
    event_data,
    fold,
)
from jobqueue.record.positions import Position, entry_key

_EVENT_COLUMNS = (
    "stream", "entry_ms", "entry_seq", "task_id", "queue", "event", "ts_ms", "attempt", "worker", "error",
    "duration_ms", "data",
)  # fmt: skip
_EVENT_TYPES = (
    "text", "int8", "int8", "text", "text", "text", "int8", "int4", "text", "text", "int8", "text",
)  # fmt: skip
# The same rows straight into task_events: epoch milliseconds become timestamptz and JSON text jsonb,
# by the two dumpers below (binary COPY applies no casts).
_EVENT_TABLE_COLUMNS = (*_EVENT_COLUMNS[:6], "ts", *_EVENT_COLUMNS[7:])
_EVENT_TABLE_TYPES = (*_EVENT_TYPES[:6], "timestamptz", *_EVENT_TYPES[7:11], "jsonb")
_TASK_COLUMNS = (
    "id", "queue", "name", "priority", "args", "kwargs", "parents", "max_retries", "timeout",
    "soft_timeout", "enqueued_at_ms", "eta_ms", "status", "worker", "started_at_ms", "completed_at_ms",
    "duration_ms", "result", "error", "traceback", "cancel_reason", "dead_letter_reason", "attempts",
    "retries", "lost_leases", "replays", "stream", "enqueued_entry_ms", "enqueued_entry_seq", "enqueued_data",
)  # fmt: skip
# Columns that may hold arbitrary text (exception messages); JSON payloads never hold a raw NUL.
_FREE_TEXT = tuple(
    _TASK_COLUMNS.index(n)
    for n in ("name", "worker", "error", "traceback", "cancel_reason", "dead_letter_reason")
)
_TASK_TYPES = (
    "text", "text", "text", "text", "text", "text", "text", "int4", "float8", "float8", "int8", "int8",
    "text", "text", "int8", "int8", "int8", "text", "text", "text", "text", "text", "int4", "int4", "int4",
    "int4", "text", "int8", "int8", "text", "int8", "int8",
)  # fmt: skip
# The same deltas straight into tasks (a task first seen in this batch): times and JSON payloads typed.
_TIME_COLUMNS = {"enqueued_at_ms": "enqueued_at", "eta_ms": "eta", "started_at_ms": "started_at",
                 "completed_at_ms": "completed_at"}  # fmt: skip
_TASK_TABLE_COLUMNS = (*(_TIME_COLUMNS.get(n, n) for n in _TASK_COLUMNS), "last_event_ms", "last_event_seq")
_TASK_TABLE_TYPES = (
    *(
        "timestamptz"
        if n in _TIME_COLUMNS
        else "jsonb"
        if n in ("args", "kwargs", "parents", "result", "enqueued_data")
        else t
        for n, t in zip(_TASK_COLUMNS, _TASK_TYPES[: len(_TASK_COLUMNS)], strict=True)
    ),
    "int8",
    "int8",
)

_task_values = operator.attrgetter(*_TASK_COLUMNS)

_INT8 = struct.Struct("!q")
_POSTGRES_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z, the zero of PostgreSQL's binary timestamps


class _EpochMsAsTimestamptz(Dumper):
    """Epoch milliseconds (int) as binary timestamptz (microseconds since 2000-01-01 UTC)."""

    format = Format.BINARY
    oid = 1184  # timestamptz

    def dump(self, obj: Any) -> Buffer:
        return _INT8.pack((obj - _POSTGRES_EPOCH_MS) * 1000)


class _JsonTextAsJsonb(Dumper):
    """A JSON document that is already text (str) as binary jsonb: format version 1, then the text.
    (psycopg's own jsonb dumper would serialise the str again, as a JSON string.)"""

    format = Format.BINARY
    oid = 3802  # jsonb

    def dump(self, obj: Any) -> Buffer:
        text: str = obj
        return b"\x01" + text.encode()


class _RecordedBefore(Exception):
    """The direct path met an event folded before (rolled back; the exact path writes the batch)."""


@dataclass(frozen=True)
class BatchResult:
    """What a batch did: events recorded now, and events that were already recorded before."""

    inserted: int
    duplicates: int


def _clean(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; an error message from a C extension may contain one.
    return value.replace("\x00", "\\u0000") if value and "\x00" in value else value


def _event_rows(events: Sequence[StreamEvent], *, all_kinds: bool = False) -> list[tuple[Any, ...]]:
    """One row per event that has a row of its own, in the order read: stream order within each
    stream, streams in the order every recorder reads them, so recorders that insert the same entries
    (a claim, a replay) wait on each other in one order instead of deadlocking."""
    rows = []
    for e in events:
        if e.event in KEPT_ON_TASK_ROW and not all_kinds:
            continue  # the task row holds it (task_event_log rebuilds it)
        fields = e.fields
        attempt, duration = fields.get("token"), fields.get("duration_ms")
        error = fields.get("error")
        rows.append(
            (
                e.stream, *e.position, e.task_id, e.queue, e.event, e.ts_ms,
                int(attempt) if attempt else None,
                fields.get("worker") or None,
                _clean(error) if error else None,
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
    """COPY ``rows`` into ``table`` (binary: psycopg encodes each row in C)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    cursor = conn.cursor()
    # Only for this cursor: the recorder's rows carry epoch ms and JSON text, not datetimes and objects.
    cursor.adapters.register_dumper(None, _EpochMsAsTimestamptz)
    cursor.adapters.register_dumper(None, _JsonTextAsJsonb)
    with cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def write_batch(
    conn: psycopg.Connection[Any],
    events: Sequence[StreamEvent],
    schedule_runs: Sequence[ScheduleRunEvent] = (),
    positions: Sequence[Position] = (),
) -> BatchResult:
    """Record ``events`` and fold the new ones into tasks and dead letters, and record ``schedule_runs``;
    one transaction, committed before returning. ``positions`` (the streams' new read positions) are
    saved in the same transaction: the record and where it stands never disagree.

    Safe to call again with the same events (a replay): events
    already in ``task_events`` are skipped, and only events inserted now change any other table; a
    schedule run already recorded for its (schedule, fire time) is skipped too.
    """
    if not events and not schedule_runs:
        if positions:
            with translate_errors(), conn.transaction():
                save_positions(conn, positions)
        return BatchResult(0, 0)
    rows = _event_rows(events)
    with translate_errors():
        if events:
            try:
                with conn.transaction():
                    inserted_runs = _write_direct(conn, rows, events, schedule_runs)
                    save_positions(conn, positions)
                return BatchResult(len(events) + inserted_runs, len(schedule_runs) - inserted_runs)
            except (psycopg.errors.UniqueViolation, _RecordedBefore):
                pass  # something was recorded before: rolled back, and written by the exact path below
        with conn.transaction():
            new = _write_exact(conn, rows, events)
            inserted_runs = _insert_schedule_runs(conn, schedule_runs)
            save_positions(conn, positions)
    total = len(events) + len(schedule_runs)
    return BatchResult(len(new) + inserted_runs, total - len(new) - inserted_runs)


def _write_direct(
    conn: psycopg.Connection[Any],
    rows: Sequence[Sequence[Any]],
    events: Sequence[StreamEvent],
    schedule_runs: Sequence[ScheduleRunEvent],
) -> int:
    """The direct path; raises UniqueViolation (the caller rolls back) if an event or a task row that
    it would insert is recorded already."""
    _copy(conn, "task_events", _EVENT_TABLE_COLUMNS, _EVENT_TABLE_TYPES, rows)
    deltas = fold(events)
    # Kept events the rows will not stand for (a second run of one task id in this batch): own rows.
    detached = _event_rows([e for d in deltas for e in d.detached], all_kinds=True)
    if detached:
        _copy(conn, "task_events", _EVENT_TABLE_COLUMNS, _EVENT_TABLE_TYPES, detached)
    fresh = [d for d in deltas if d.enqueued_at_ms is not None]
    if fresh:
        # A task whose 'enqueued' event is in this batch has no row yet, unless a later event of it was
        # recorded first (several recorders): then the COPY fails on the key and the exact path merges.
        _copy(conn, "tasks", _TASK_TABLE_COLUMNS, _TASK_TABLE_TYPES, _task_rows(fresh))
    _merge_deltas(conn, [d for d in deltas if d.enqueued_at_ms is None], direct=True)
    _dead_letters(conn, deltas, events)
    return _insert_schedule_runs(conn, schedule_runs)


def _write_exact(
    conn: psycopg.Connection[Any], rows: Sequence[Sequence[Any]], events: Sequence[StreamEvent]
) -> list[StreamEvent]:
    """The exact path: skip the entries recorded before, fold only the others. Returns those."""
    if not events:
        return []
    conn.execute(load_sql("recorder_staging"))
    _copy(conn, "staged_events", _EVENT_COLUMNS, _EVENT_TYPES, rows)
    skipped = conn.execute(load_sql("insert_events")).fetchall()
    known = {(str(s), int(ms), int(seq)) for s, ms, seq in skipped}
    new = [e for e in events if (e.stream, *e.position) not in known]
    kept = [e for e in new if e.event in KEPT_ON_TASK_ROW]
    if kept:
        # Events without a row of their own were recorded before if their task row stands for them at
        # their position, or they were written to task_events (before 0004, or preserved).
        recorded = {
            (str(task_id), int(ms), int(seq))
            for task_id, ms, seq in conn.execute(
                load_sql("kept_on_task_rows"),
                {
                    "task_ids": [e.task_id for e in kept],
                    "events": [e.event for e in kept],
                    "entry_ms": [e.position[0] for e in kept],
                    "entry_seq": [e.position[1] for e in kept],
                    "streams": [e.stream for e in kept],
                },
            )
        }
        if recorded:
            new = [e for e in new if (e.task_id, *e.position) not in recorded]
    deltas = fold(new)
    detached = _event_rows([e for d in deltas for e in d.detached], all_kinds=True)
    if detached:
        _copy(conn, "staged_events", _EVENT_COLUMNS, _EVENT_TYPES, detached)
        conn.execute(load_sql("insert_events")).fetchall()  # the others were inserted above: skipped
    _merge_deltas(conn, deltas)
    _dead_letters(conn, deltas, new)
    return new


def save_positions(conn: psycopg.Connection[Any], positions: Sequence[Position]) -> None:
    """Advance the streams' stored positions (inside the caller's transaction); never moves one back."""
    if positions:
        conn.execute(
            load_sql("save_positions"),
            {
                "stream": [p.stream for p in positions],
                "entry_ms": [entry_key(p.entry_id)[0] for p in positions],
                "entry_seq": [entry_key(p.entry_id)[1] for p in positions],
                "consumed": [p.consumed for p in positions],
            },
        )


def _insert_schedule_runs(conn: psycopg.Connection[Any], runs: Sequence[ScheduleRunEvent]) -> int:
    if not runs:
        return 0
    return len(conn.execute(load_sql("insert_schedule_runs"), _run_params(runs)).fetchall())


def _task_rows(deltas: Sequence[TaskDelta]) -> list[list[Any]]:
    rows = []
    for d in deltas:
        row = [*_task_values(d), *d.last_position]
        for i in _FREE_TEXT:
            value = row[i]
            if value and "\x00" in value:
                row[i] = _clean(value)
        rows.append(row)
    return rows


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


def _merge_deltas(conn: psycopg.Connection[Any], deltas: Sequence[TaskDelta], direct: bool = False) -> None:
    """Merge deltas into existing (or missing) task rows with the order-safe upsert.

    ``direct``: the direct path's merge, which expects every existing row to be older than its delta and
    not finished with success (the rows of tasks enqueued in an earlier batch). A 'succeeded' event
    has no event row whose key would refuse a replay, so the task row does: the upsert leaves alone a
    row that is ``SUCCESS`` or newer than its delta, and then raises _RecordedBefore (rolled back; the
    exact path writes the batch, preserving the events kept on rows that the merge would change)."""
    if not deltas:
        return
    conn.execute(load_sql("recorder_staging"))
    _copy(
        conn,
        "staged_tasks_v2",
        (*_TASK_COLUMNS, "last_event_ms", "last_event_seq"),
        _TASK_TYPES,
        _task_rows(deltas),
    )
    if direct:
        if conn.execute(load_sql("upsert_tasks"), {"direct": True}).rowcount != len(deltas):
            raise _RecordedBefore
        return
    conn.execute(load_sql("preserve_task_row_events"))
    conn.execute(load_sql("upsert_tasks"), {"direct": False})


def _dead_letters(
    conn: psycopg.Connection[Any], deltas: Sequence[TaskDelta], new: Sequence[StreamEvent]
) -> None:
    """Dead letter rows of the new 'dead_lettered' events (after the task rows, which give the name)."""
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
