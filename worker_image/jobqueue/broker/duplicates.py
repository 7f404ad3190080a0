"""Which task a deduplicated enqueue was folded into (GET /api/v1/tasks/{id}/duplicate).

A unique enqueue that finds a live task with its signature creates no task: enqueue.lua writes a folded
record under the id that enqueue was given (keys.QueueKeys.folded: the holder's id, the dedup key, the
time) for as long as the dedup key lives. This module reads it back, or says the id is a task of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobqueue.broker.client import Client
from jobqueue.broker.redis_io import translate_errors
from jobqueue.errors import TaskNotFound
from jobqueue.keys import keys_for_task
from jobqueue.models import TaskStatus


@dataclass(frozen=True)
class DuplicateAnswer:
    """``duplicate``: whether the enqueue with this id was folded into another task, ``duplicate_of``.
    ``signature``: the dedup signature (SHA-256 hex, docs/deduplication.md) of the folded enqueue, or of
    the task itself when it is a unique task; None for a task enqueued without ``unique``.
    ``duplicate_of_status``: the holder's status now (None once its record is gone)."""

    id: str
    duplicate: bool
    signature: str | None
    duplicate_of: str | None = None
    duplicate_of_status: TaskStatus | None = None
    folded_at: float | None = None  # unix seconds, Redis clock

    def to_json(self) -> dict[str, Any]:
        """The API's JSON shape."""
        holder_status = self.duplicate_of_status
        return {
            "id": self.id,
            "duplicate": self.duplicate,
            "duplicate_of": self.duplicate_of,
            "duplicate_of_status": None if holder_status is None else holder_status.value,
            "signature": self.signature,
            "folded_at": self.folded_at,
        }


def _signature(unique_key: str | None) -> str | None:
    """The digest at the end of a dedup key (keys.QueueKeys.unique)."""
    return unique_key.rpartition(":")[2] if unique_key else None


def _status(text: str | None) -> TaskStatus | None:
    try:
        return TaskStatus(text) if text else None
    except ValueError:  # written outside jobqueue
        return None


def find_duplicate(client: Client, task_id: str) -> DuplicateAnswer:
    """The answer for ``task_id``; TaskNotFound when it is neither a task nor a folded enqueue (or both
    records are gone: a folded record lives as long as its dedup key, a task as long as its result)."""
    conn, prefix = client.redis, client.settings.key_prefix
    keys = keys_for_task(prefix, task_id)
    with translate_errors():
        pipe = conn.pipeline(transaction=False)
        pipe.hgetall(keys.folded(task_id))
        pipe.hmget(keys.task(task_id), ["status", "unique_key"])
        folded, (status, unique_key) = pipe.execute()
        if folded.get("holder"):
            holder = folded["holder"]
            holder_status = conn.hget(keys_for_task(prefix, holder).task(holder), "status")
            at = folded.get("at")
            return DuplicateAnswer(
                id=task_id,
                duplicate=True,
                signature=_signature(folded.get("unique_key")),
                duplicate_of=holder,
                duplicate_of_status=_status(holder_status),
                folded_at=int(at) / 1000 if at and at.isdigit() else None,
            )
    if status is None:
        raise TaskNotFound(task_id)
    return DuplicateAnswer(id=task_id, duplicate=False, signature=_signature(unique_key))
