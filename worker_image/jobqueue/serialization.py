"""JSON only: the broker must never be a code-execution channel, so nothing is ever pickled."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from jobqueue.errors import NotSerializable, PayloadTooLarge

# Built once: ``json.dumps`` with any non-default option constructs a new JSONEncoder on every call, which
# was a third of the client's cost of building an enqueue. ``encode`` keeps no state between calls, so one
# encoder serves every thread.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any, field: str) -> str:
    """Compact JSON of ``value``; NotSerializable naming ``field`` when it is not plain JSON data."""
    try:
        return _COMPACT.encode(value)
    except (TypeError, ValueError) as exc:
        raise NotSerializable(field, f"is not JSON-serializable ({exc})") from exc


def loads(text: str | bytes | None) -> Any:
    """Parse JSON stored by jobqueue; ``None`` and empty strings read as None."""
    if text is None or text in ("", b""):
        return None
    return json.loads(text)


def canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace) so equal values always give equal text."""
    return _CANONICAL.encode(value)


def signature(name: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    """SHA-256 of the task name and canonical JSON of its arguments: the deduplication signature."""
    return hashlib.sha256(canonical([name, args, kwargs]).encode()).hexdigest()


def check_size(size: int, limit: int) -> None:
    """PayloadTooLarge when a serialized task is over the configured limit."""
    if size > limit:
        raise PayloadTooLarge("payload", f"serialized task is {size} bytes, over the {limit}-byte limit")
