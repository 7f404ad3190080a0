"""Reading a task hash: the fields fetched (TASK_FIELDS) and their parse into a TaskRecord. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobqueue.models import CancelReason, Priority, TaskRecord, TaskStatus
from jobqueue.serialization import loads

TASK_FIELDS = (
    "name",
    "queue",
    "priority",
    "status",
    "args",
    "kwargs",
    "attempts",
    "max_retries",
    "retries",
    "lost_leases",
    "result",
    "error",
    "traceback",
    "history",
    "cancel_reason",
    "dead_letter_reason",
    "worker",
    "enqueued_at",
    "eta",
    "started_at",
    "completed_at",
    "timeout",
    "soft_timeout",
    "parents",
    "children",
    "pending_parents",
    "expires_at",
    "progress",
)


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else value


def _ms(value: str | None) -> float | None:
    if value is None or value in ("", "0"):
        return None
    return int(value) / 1000.0


def _float(value: str | None) -> float | None:
    return None if value in (None, "") else float(value)


def _json_or_raw(text: str | None) -> Any:
    """Stored JSON, or the raw text when a message was corrupted outside jobqueue (shown, not hidden)."""
    try:
        return loads(text)
    except ValueError:
        return text


def _cancel_reason(text: str | None) -> CancelReason | None:
    """Every writer (cancel.lua from a validated reason, the workflow scripts, the scheduler) stores a
    CancelReason value; anything else was written outside jobqueue and reads as OTHER."""
    if not text:
        return None
    try:
        return CancelReason(text)
    except ValueError:
        return CancelReason.OTHER


def _child_id(task_key: bytes | str) -> str:
    """The id at the end of a task hash key (ids hold no ':', see keys.new_task_id)."""
    return (_text(task_key) or "").rpartition(":")[2]


def parse_task(
    task_id: str, values: Sequence[bytes | str | None], child_keys: Sequence[bytes | str] = ()
) -> TaskRecord | None:
    """A TaskRecord from an HMGET of TASK_FIELDS and the task's child list (the children's task hash
    keys, keys.QueueKeys.children), or None when the task hash does not exist."""
    f = dict(zip(TASK_FIELDS, (_text(v) for v in values), strict=True))
    if f["status"] is None:
        return None
    return TaskRecord(
        id=task_id,
        name=f["name"] or "",
        # Not written since the lean layout: the queue is the id's prefix (keys.queue_of).
        queue=f["queue"] or task_id.rpartition(".")[0],
        priority=Priority(f["priority"] or "medium"),
        status=TaskStatus(f["status"]),
        args=_json_or_raw(f["args"]) or [],
        kwargs=_json_or_raw(f["kwargs"]) or {},
        attempts=int(f["attempts"] or 0),
        max_retries=int(f["max_retries"]) if f["max_retries"] else None,
        retries=int(f["retries"] or 0),
        lost_leases=int(f["lost_leases"] or 0),
        result=_json_or_raw(f["result"]),
        error=f["error"] or None,
        traceback=f["traceback"] or None,
        retry_history=_json_or_raw(f["history"]) or [],
        cancel_reason=_cancel_reason(f["cancel_reason"]),
        dead_letter_reason=f["dead_letter_reason"],
        worker=f["worker"],
        enqueued_at=_ms(f["enqueued_at"]),
        eta=_ms(f["eta"]),
        started_at=_ms(f["started_at"]),
        completed_at=_ms(f["completed_at"]),
        timeout=_float(f["timeout"]),
        soft_timeout=_float(f["soft_timeout"]),
        parents=loads(f["parents"]) or [],
        # A parent written before the child list kept its children's ids in a JSON field.
        children=(loads(f["children"]) or []) + [_child_id(k) for k in child_keys],
        pending_parents=int(f["pending_parents"] or 0),
        expires_at=_ms(f["expires_at"]),
        progress=_progress(f["progress"]),
    )


def _progress(text: str | None) -> dict[str, Any] | None:
    """The progress a worker wrote (worker/progress.py); anything else (written by hand) reads as none."""
    value = _json_or_raw(text)
    return value if isinstance(value, dict) else None
