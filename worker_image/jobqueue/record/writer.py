"""Write one batch of stream events to PostgreSQL in one transaction, idempotently.

Each statement is a single multi-row ``INSERT ... SELECT FROM unnest(arrays)``: one round trip per table
whatever the batch size, with the arrays sent in binary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from jobqueue.record.db import load_sql, translate_errors
from jobqueue.record.events import ScheduleRunEvent, StreamEvent, event_data, fold

_TASK_COLUMNS = (
    "id", "queue", "name", "priority", "args", "kwargs", "parents", "max_retries", "timeout",
    "soft_timeout", "enqueued_at_ms", "eta_ms", "status", "worker", "started_at_ms", "completed_at_ms",
    "duration_ms", "result", "error", "traceback", "cancel_reason", "dead_letter_reason", "attempts",
    "retries", "lost_leases", "replays",
)  # fmt: skip


@dataclass(frozen=True)
class BatchResult:
    """What a batch did: events recorded now, and events that were already recorded before."""

    inserted: int
    duplicates: int


def _clean(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; an error message from a C extension may contain one.
    return value.replace("\x00", "\\u0000") if value and "\x00" in value else value


def _event_params(events: Sequence[StreamEvent]) -> dict[str, list[Any]]:
    positions = [e.position for e in events]
    return {
        "stream": [e.stream for e in events],
        "entry_ms": [p[0] for p in positions],
        "entry_seq": [p[1] for p in positions],
        "task_id": [e.task_id for e in events],
        "queue": [e.queue for e in events],
        "event": [e.event for e in events],
        "ts_ms": [e.ts_ms for e in events],
        "attempt": [e.int_field("token") for e in events],
        "worker": [e.text_field("worker") for e in events],
        "error": [_clean(e.text_field("error")) for e in events],
        "duration_ms": [e.int_field("duration_ms") for e in events],
        "data": [_clean(event_data(e)) for e in events],
    }


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
            rows = conn.execute(load_sql("insert_events"), _event_params(events)).fetchall()
            inserted = {(str(s), int(ms), int(seq)) for s, ms, seq in rows}
            new = [e for e in events if (e.stream, *e.position) in inserted]
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
    params: dict[str, list[Any]] = {n: [_clean_any(getattr(d, n)) for d in deltas] for n in _TASK_COLUMNS}
    params["last_event_ms"] = [d.last_position[0] for d in deltas]
    params["last_event_seq"] = [d.last_position[1] for d in deltas]
    conn.execute(load_sql("upsert_tasks"), params)
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


def _clean_any(value: Any) -> Any:
    return _clean(value) if isinstance(value, str) else value


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
