"""Poison entries: a batch that PostgreSQL refuses for a reason other than an outage is bisected down to
the entries it refuses, which are parked in ``record_rejects`` with the reason; the rest is recorded.

Without this, one entry the record cannot store (a NUL in a jsonb value, written by an older producer
or by hand) failed its batch for ever: the recorder retried it, a restarted recorder claimed the same
pending entries, and nothing of any queue was recorded again. Bisection costs about 2·log2(batch)
extra transactions per poison entry; entries recorded by a half that committed before are recognised
as duplicates when the batch is retried (the writer is idempotent), so a transient error in the middle
of a bisection is simply retried from the start.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import psycopg

from jobqueue.errors import RecordUnavailable
from jobqueue.payloads import escape_text
from jobqueue.record.db import load_sql
from jobqueue.record.db import translate_errors as pg_errors
from jobqueue.record.events import ScheduleRunEvent, StreamEvent
from jobqueue.record.writer import BatchResult

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2_000


class Parsed(NamedTuple):
    """A stream entry and what it parsed to (a task event or a schedule run). A tuple: one is built per
    entry on the recorder's path, where a frozen dataclass's __init__ cost a visible share."""

    stream: str
    entry_id: str
    fields: dict[str, Any]
    item: StreamEvent | ScheduleRunEvent


Write = Callable[[Sequence[StreamEvent], Sequence[ScheduleRunEvent]], BatchResult]
Park = Callable[[Parsed, str], None]


@dataclass
class WriteTally:
    """What a bisected write did: counts summed over the transactions that committed, and parked."""

    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0


def _split(items: Sequence[Parsed]) -> tuple[list[StreamEvent], list[ScheduleRunEvent]]:
    events = [p.item for p in items if isinstance(p.item, StreamEvent)]
    runs = [p.item for p in items if isinstance(p.item, ScheduleRunEvent)]
    return events, runs


def reason_of(exc: BaseException) -> str:
    """The stored reason: the error's type and message, cut and escaped (it may quote the bad value)."""
    cause = exc.__cause__ or exc
    return escape_text(f"{type(cause).__name__}: {cause}"[:MAX_REASON_CHARS])


def write_or_park(
    write: Write, park: Park, items: Sequence[Parsed], outcome: WriteTally | None = None
) -> WriteTally:
    """Write ``items`` in order; any failure but RecordUnavailable splits them in halves, down to single
    entries, which are parked. RecordUnavailable propagates (the caller retries the whole batch)."""
    outcome = outcome if outcome is not None else WriteTally()
    try:
        result = write(*_split(items))
    except RecordUnavailable:
        raise
    except Exception as exc:
        if len(items) == 1:
            park(items[0], reason_of(exc))
            outcome.rejected += 1
            return outcome
        middle = len(items) // 2
        # In stream order: the first half commits before the second is tried.
        write_or_park(write, park, items[:middle], outcome)
        write_or_park(write, park, items[middle:], outcome)
        return outcome
    outcome.inserted += result.inserted
    outcome.duplicates += result.duplicates
    return outcome


def fields_text(fields: dict[str, Any]) -> str:
    """The entry's fields as ASCII JSON: a NUL or a lone surrogate becomes a \\u escape, which a text
    column holds."""
    return json.dumps(fields, ensure_ascii=True, default=str)


def insert_reject(conn: psycopg.Connection[Any], parsed: Parsed, reason: str) -> bool:
    """Park one entry; False when it was parked before (a retried batch). RecordUnavailable on an
    outage."""
    ms, _, seq = parsed.entry_id.partition("-")
    task_id = parsed.item.task_id if isinstance(parsed.item, StreamEvent) else None
    with pg_errors():
        cursor = conn.execute(
            load_sql("insert_reject"),
            {
                "stream": parsed.stream,
                "entry_ms": int(ms),
                "entry_seq": int(seq or 0),
                "task_id": escape_text(task_id) if task_id else None,
                "reason": reason,
                "fields": fields_text(parsed.fields),
            },
        )
    return cursor.rowcount == 1
