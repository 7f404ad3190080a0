"""Task progress, pure: what ``ctx.set_progress`` accepts and the value stored on the task record.

The stored value is ``{"done": n, "total": n | null, "message": str | null, "at": unix seconds}``; the
worker writes it (worker/progress.py, throttled) with lua/progress.lua, and ``get_task`` reads it back
as ``TaskRecord.progress``.
"""

from __future__ import annotations

import math
from typing import Any

from jobqueue.errors import InvalidProgress, ValidationError
from jobqueue.payloads import check_text

# Counts beyond 2**53 lose precision in JSON readers (JavaScript): refused rather than shown wrong.
MAX_PROGRESS_NUMBER = 2**53
MAX_PROGRESS_MESSAGE_CHARS = 1000


def _number(value: object, field: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidProgress(field, f"must be a number, got {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidProgress(field, f"must be a finite number, got {value}")
    if value < 0:
        raise InvalidProgress(field, f"must be >= 0, got {value}")
    if value > MAX_PROGRESS_NUMBER:
        raise InvalidProgress(field, f"must be at most {MAX_PROGRESS_NUMBER}")
    return value


def progress_value(done: object, total: object = None, message: object = None) -> dict[str, Any]:
    """The progress to store, without its time; InvalidProgress (a ValidationError, so a ValueError and
    a JobQueueError) naming the argument when one cannot describe progress."""
    done_n = _number(done, "done")
    total_n = None if total is None else _number(total, "total")
    if total_n is not None and total_n < done_n:
        raise InvalidProgress("total", f"must be >= done ({done_n}), got {total_n}")
    if message is not None:
        if not isinstance(message, str):
            raise InvalidProgress("message", f"must be a string, got {type(message).__name__}")
        if len(message) > MAX_PROGRESS_MESSAGE_CHARS:
            raise InvalidProgress("message", f"must be at most {MAX_PROGRESS_MESSAGE_CHARS} characters")
        try:
            check_text(message, "message")
        except ValidationError as exc:  # retyped, so a task catches every bad progress as one class
            raise InvalidProgress("message", exc.message) from exc
    return {"done": done_n, "total": total_n, "message": message}
