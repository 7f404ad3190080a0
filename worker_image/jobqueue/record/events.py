"""Pure translation of stream entries into rows: no I/O, unit-tested on its own.

A stream entry is one task transition written by a Lua script (fields ``id``, ``event``, ``ts`` and
event-specific ones). The recorder turns a batch of entries into ``task_events`` rows, then folds the
events it actually inserted into one :class:`TaskDelta` per task, which the upsert merges into ``tasks``.
Events of the kinds in :data:`KEPT_ON_TASK_ROW` get no ``task_events`` row: the task row holds all they
say, and the ``task_event_log`` view rebuilds them (migration 0004). All parsing of entry fields is in
this module.
"""

from __future__ import annotations

import json
import logging
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Fields that become columns of task_events (or live on the tasks row only) rather than in its ``data``.
_COLUMN_FIELDS = frozenset({"id", "event", "ts", "token", "worker", "error", "duration_ms"})
# Large payloads kept once, on the task row, not again in the event history.
_TASK_ONLY_FIELDS = frozenset({"args", "kwargs", "result", "name", "queue", "priority"})

_NOT_DATA = _COLUMN_FIELDS | _TASK_ONLY_FIELDS
# Built once: json.dumps with non-default separators builds an encoder per call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))

# An entry read from a stream: (stream key, entry id, fields, or None when the entry was trimmed away).
Entry = tuple[str, str, dict[str, str] | None]

# Events whose every field the task row keeps, so they have no task_events row of their own (see
# sql/0004_task_row_events.sql): 'enqueued' is the task's spec and enqueue time, and 'succeeded' is
# terminal, so the row's final completed_at, attempts and duration_ms are its time, attempt and duration.
KEPT_ON_TASK_ROW = frozenset({"enqueued", "succeeded"})

# Status an event leaves the task in, when it does not carry one itself.
_STATUS_OF = {
    "started": "RUNNING",
    "succeeded": "SUCCESS",
    "retrying": "RETRYING",
    "cancelled": "CANCELLED",
    "expired": "EXPIRED",
    "released": "QUEUED",
    "lease_lost": "QUEUED",
    "replayed": "QUEUED",
}


@dataclass(slots=True)
class StreamEvent:
    """One stream entry, parsed. ``fields`` keeps every field as Redis returned it (strings);
    ``position`` is the (ms, sequence) of the entry id: the order of events within a stream.
    (Slots, not frozen: tens of thousands are built per second, and nothing mutates them.)"""

    stream: str
    entry_id: str
    queue: str
    task_id: str
    event: str
    ts_ms: int
    fields: Mapping[str, str]
    position: tuple[int, int]

    def int_field(self, name: str) -> int | None:
        """An integer field, None when absent or empty."""
        value = self.fields.get(name)
        return int(value) if value not in (None, "") else None

    def text_field(self, name: str) -> str | None:
        """A text field, None when absent or empty."""
        value = self.fields.get(name)
        return value if value else None


def entries_from_reply(reply: Any) -> list[Entry]:
    """XREADGROUP's unparsed RESP2 reply, ``[[stream, [[id, [field, value, ...]], ...]], ...]`` (None when
    nothing came), as a flat list of entries. redis-py's own parsing builds a (id, dict) pair per entry
    in Python, then the recorder flattened those again; one pass here costs about a third less per entry
    (measured, docs/record.md)."""
    entries: list[Entry] = []
    append = entries.append
    for stream, items in reply or ():
        for entry_id, flat in items:
            if flat:
                pairs = iter(flat)
                append((stream, entry_id, dict(zip(pairs, pairs, strict=False))))
            else:
                append((stream, entry_id, None))
    return entries


def parse_entry(
    stream: str, queue: str, entry_id: str, fields: Mapping[str, str] | None
) -> StreamEvent | None:
    """A StreamEvent, or None for an entry that is not a task transition (it is logged and skipped)."""
    if not fields or "id" not in fields or "event" not in fields or "ts" not in fields:
        # Field names only: the values may be a task's arguments, which are never logged.
        log.warning("skipping malformed event %s in %s (fields %s)", entry_id, stream, sorted(fields or ()))
        return None
    try:
        ts_ms = int(fields["ts"])
    except ValueError:
        log.warning("skipping event %s in %s with a bad ts: %r", entry_id, stream, fields["ts"][:40])
        return None
    ms, _, seq = entry_id.partition("-")
    return StreamEvent(
        stream, entry_id, queue, fields["id"], fields["event"], ts_ms, fields, (int(ms), int(seq or 0))
    )


@dataclass(frozen=True)
class ScheduleRunEvent:
    """One entry of the schedule event stream: what happened to one fire time of a schedule (written by
    lua/schedule_claim.lua for missed groups and lua/schedule_outcome.lua for claimed fires)."""

    schedule: str
    fire_ms: int
    status: str  # fired, skipped, missed, failed
    ts_ms: int
    task_id: str | None = None
    replaced_task_id: str | None = None
    missed: int | None = None
    detail: str | None = None


def parse_schedule_entry(
    stream: str, entry_id: str, fields: Mapping[str, str] | None
) -> ScheduleRunEvent | None:
    """A ScheduleRunEvent, or None for a malformed entry (logged and skipped, as task events are)."""
    f = fields or {}
    try:
        return ScheduleRunEvent(
            schedule=f["schedule"],
            fire_ms=int(f["fire"]),
            status=f["status"],
            ts_ms=int(f["ts"]),
            task_id=f.get("task_id") or None,
            replaced_task_id=f.get("replaced") or None,
            missed=int(f["missed"]) if f.get("missed") else None,
            detail=f.get("detail") or None,
        )
    except (KeyError, ValueError):
        log.warning(
            "skipping malformed schedule event %s in %s (fields %s)", entry_id, stream, sorted(fields or ())
        )
        return None


def event_data(event: StreamEvent) -> str:
    """The JSON ``data`` column: every field that has no column of its own and is not a task payload."""
    fields = event.fields
    if fields.keys() <= _NOT_DATA:  # most events ('started', 'succeeded'): nothing left, no encoding
        return "{}"
    rest = {k: v for k, v in fields.items() if k not in _NOT_DATA}
    return _COMPACT_JSON.encode(rest)


def _json_or_none(value: str | None) -> str | None:
    """Payloads are JSON already (serialization.dumps); only empty means absent."""
    return value if value else None


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value else None


class TaskDelta:
    """What one batch of new events says about one task, folded in stream order.

    Spec fields are set once (by 'enqueued'); state fields are the values after the newest event;
    ``retries``, ``lost_leases`` and ``replays`` are counts to add. ``worker == ''`` means "cleared".
    (A plain class whose defaults are class attributes: one is built per task per batch, and an instance
    then stores only the few fields its events set, instead of initialising thirty.)
    """

    id: str
    queue: str
    stream: str
    last_position: tuple[int, int] = (0, 0)
    name: str | None = None
    priority: str | None = None
    args: str | None = None
    kwargs: str | None = None
    max_retries: int | None = None
    timeout: float | None = None
    soft_timeout: float | None = None
    parents: str | None = None
    enqueued_at_ms: int | None = None
    enqueued_entry_ms: int | None = None
    enqueued_entry_seq: int | None = None
    enqueued_data: str | None = None
    eta_ms: int | None = None
    status: str | None = None
    worker: str | None = None
    started_at_ms: int | None = None
    completed_at_ms: int | None = None
    duration_ms: int | None = None
    result: str | None = None
    error: str | None = None
    traceback: str | None = None
    cancel_reason: str | None = None
    dead_letter_reason: str | None = None
    attempts: int = 0
    retries: int = 0
    lost_leases: int = 0
    replays: int = 0
    dead_letters: tuple[StreamEvent, ...] = ()
    # Events of KEPT_ON_TASK_ROW folded here that the row no longer stands for once the batch is folded
    # (a second run under one task id in the same batch): they need task_events rows of their own.
    detached: tuple[StreamEvent, ...] = ()
    _kept_enqueued: StreamEvent | None = None
    _kept_succeeded: StreamEvent | None = None

    def __init__(self, task_id: str, queue: str, stream: str) -> None:
        self.id = task_id
        self.queue = queue
        self.stream = stream

    def __repr__(self) -> str:
        return f"TaskDelta({vars(self)!r})"

    def apply(self, e: StreamEvent) -> None:
        """Fold one event (events must come in stream order)."""
        fields = e.fields
        if self._kept_succeeded is not None:  # a newer event after 'succeeded': only with a reused id
            self.detached = (*self.detached, self._kept_succeeded)
            self._kept_succeeded = None
        self.last_position = e.position
        token = fields.get("token")
        if token:
            self.attempts = max(self.attempts, int(token))
        self.status = fields.get("status") or _STATUS_OF.get(e.event, self.status)
        handler = _HANDLERS.get(e.event)
        if handler is not None:
            handler(self, e)

    def _on_enqueued(self, e: StreamEvent) -> None:
        if self._kept_enqueued is not None:  # a second 'enqueued': only with a reused id
            self.detached = (*self.detached, self._kept_enqueued)
        self._kept_enqueued = e
        f = e.fields
        self.name = f.get("name") or self.name
        self.priority = f.get("priority") or self.priority
        self.args = _json_or_none(f.get("args"))
        self.kwargs = _json_or_none(f.get("kwargs"))
        self.parents = _json_or_none(f.get("parents"))
        self.max_retries = e.int_field("max_retries")
        self.timeout = _float_or_none(f.get("timeout"))
        self.soft_timeout = _float_or_none(f.get("soft_timeout"))
        self.enqueued_at_ms = e.ts_ms
        self.enqueued_entry_ms, self.enqueued_entry_seq = e.position
        self.enqueued_data = event_data(e)
        self.eta_ms = e.int_field("eta") or None

    def _on_started(self, e: StreamEvent) -> None:
        self.worker = e.fields.get("worker") or ""
        self.started_at_ms = e.ts_ms

    def _finish(self, e: StreamEvent) -> None:
        self.completed_at_ms = e.ts_ms
        self.duration_ms = e.int_field("duration_ms")

    def _on_succeeded(self, e: StreamEvent) -> None:
        # The most common event after 'started': _finish inlined.
        fields = e.fields
        self.completed_at_ms = e.ts_ms
        duration = fields.get("duration_ms")
        self.duration_ms = int(duration) if duration else None
        self.result = fields.get("result") or None
        self._kept_succeeded = e

    def _on_retrying(self, e: StreamEvent) -> None:
        self.retries += 1
        self.error = e.text_field("error")
        self.traceback = e.text_field("traceback")
        backoff = e.int_field("backoff_ms")
        self.eta_ms = e.ts_ms + backoff if backoff is not None else None

    def _on_dead_lettered(self, e: StreamEvent) -> None:
        self._finish(e)
        self.error = e.text_field("error")
        self.traceback = e.text_field("traceback")
        self.dead_letter_reason = e.text_field("reason")
        self.dead_letters = (*self.dead_letters, e)

    def _on_cancelled(self, e: StreamEvent) -> None:
        self._finish(e)
        self.cancel_reason = e.text_field("reason") or self.cancel_reason

    def _on_expired(self, e: StreamEvent) -> None:
        # Ended at fetch without running (lua/_lease.lua): no attempt, so no duration and no worker.
        self._finish(e)
        self.worker = ""

    def _on_cancel_requested(self, e: StreamEvent) -> None:
        self.cancel_reason = e.text_field("reason")

    def _on_released(self, e: StreamEvent) -> None:
        self.worker = ""

    def _on_lease_lost(self, e: StreamEvent) -> None:
        self.worker = ""
        self.lost_leases += 1

    def _on_replayed(self, e: StreamEvent) -> None:
        # The task starts over: its previous outcome no longer describes it.
        self.replays += 1
        self.worker = ""
        self.completed_at_ms = self.duration_ms = None
        self.result = self.dead_letter_reason = None


_HANDLERS = {
    name.removeprefix("_on_"): handler
    for name, handler in vars(TaskDelta).items()
    if name.startswith("_on_") and callable(handler)
}


def fold(events: Iterable[StreamEvent]) -> list[TaskDelta]:
    """One delta per task, events applied in stream order; sorted by task id (a stable lock order, so
    concurrent recorders never deadlock on each other's rows)."""
    deltas: dict[str, TaskDelta] = {}
    for e in sorted(events, key=_position):  # already in order, unless several streams
        delta = deltas.get(e.task_id)
        if delta is None:
            delta = deltas[e.task_id] = TaskDelta(e.task_id, e.queue, e.stream)
        delta.apply(e)
    return [deltas[k] for k in sorted(deltas)]


_position = operator.attrgetter("position")


def columns(rows: Iterable[Any], names: Iterable[str]) -> list[list[Any]]:
    """Column-major lists of attributes (the shape ``unnest`` wants: one array parameter per column)."""
    rows = list(rows)
    return [[getattr(r, n) for r in rows] for n in names]
