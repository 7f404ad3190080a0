"""Domain values: priorities, statuses, cancel reasons and the immutable task record."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from jobqueue.errors import ValidationError


class Priority(enum.StrEnum):
    """Three levels per queue; strict by default (high drains before medium before low)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


def parse_priority(value: Priority | str) -> Priority:
    """A Priority from an enum or its name; ValidationError('priority') otherwise."""
    if isinstance(value, Priority):
        return value
    try:
        return Priority(value.lower() if isinstance(value, str) else value)
    except (ValueError, AttributeError) as exc:
        raise ValidationError("priority", f"{value!r} is not one of high, medium, low") from exc


class TaskStatus(enum.StrEnum):
    """Where a task is in its lifecycle. Terminal: SUCCESS, FAILED, TIMEOUT, CANCELLED."""

    PENDING = "PENDING"  # waiting on dependencies
    QUEUED = "QUEUED"  # ready to be leased
    DELAYED = "DELAYED"  # eta / countdown not reached yet
    RUNNING = "RUNNING"  # leased by a worker
    RETRYING = "RETRYING"  # failed, waiting for its backoff to elapse
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"  # out of retries or not retryable: dead-lettered
    TIMEOUT = "TIMEOUT"  # killed at its hard time limit on the last attempt: dead-lettered
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """True once the task can no longer change state by itself."""
        return self in _TERMINAL


_TERMINAL = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED})


class CancelReason(enum.StrEnum):
    """Why a task was cancelled."""

    USER_REQUESTED = "user_requested"
    TIMEOUT = "timeout"
    DEPENDENCY_FAILED = "dependency_failed"
    WORKER_SHUTDOWN = "worker_shutdown"
    SYSTEM_ERROR = "system_error"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    OTHER = "other"


class DeadLetterReason(enum.StrEnum):
    """Why a task ended in the dead letter queue."""

    MAX_RETRIES_EXCEEDED = "max_retries_exceeded"
    NOT_RETRYABLE = "not_retryable"
    TIMEOUT = "timeout"
    LEASE_LOST_TOO_OFTEN = "lease_lost_too_often"
    MALFORMED = "malformed"
    UNKNOWN_TASK = "unknown_task"


@dataclass(frozen=True)
class RetryRecord:
    """One failed attempt that was retried (or the last one, that was not)."""

    attempt: int
    error: str
    traceback: str | None
    backoff_seconds: float | None
    at: float  # unix seconds, Redis server clock

    def to_json(self) -> dict[str, Any]:
        """The JSON shape stored on the task and returned by the API."""
        return {
            "attempt": self.attempt,
            "error": self.error,
            "traceback": self.traceback,
            "backoff_seconds": self.backoff_seconds,
            "at": self.at,
        }


@dataclass(frozen=True)
class TaskRecord:
    """A snapshot of one task as stored in Redis; times are unix seconds (Redis server clock)."""

    id: str
    name: str
    queue: str
    priority: Priority
    status: TaskStatus
    args: list[Any]
    kwargs: dict[str, Any]
    attempts: int
    max_retries: int | None  # None: the queue's retry default applies
    retries: int
    lost_leases: int
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    retry_history: list[dict[str, Any]] = field(default_factory=list)
    cancel_reason: str | None = None
    dead_letter_reason: str | None = None
    worker: str | None = None
    enqueued_at: float | None = None
    eta: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    timeout: float | None = None
    soft_timeout: float | None = None
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    pending_parents: int = 0  # parents not yet succeeded, while PENDING

    @property
    def duration(self) -> float | None:
        """Run time of the last attempt in seconds, once it completed."""
        if self.started_at is None or self.completed_at is None:
            return None
        return max(0.0, self.completed_at - self.started_at)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field plus the derived duration."""
        return {
            "id": self.id,
            "name": self.name,
            "queue": self.queue,
            "priority": self.priority.value,
            "status": self.status.value,
            "args": self.args,
            "kwargs": self.kwargs,
            "attempts": self.attempts,
            "max_retries": self.max_retries,
            "retries": self.retries,
            "lost_leases": self.lost_leases,
            "result": self.result,
            "error": self.error,
            "traceback": self.traceback,
            "retry_history": self.retry_history,
            "cancel_reason": self.cancel_reason,
            "dead_letter_reason": self.dead_letter_reason,
            "worker": self.worker,
            "enqueued_at": self.enqueued_at,
            "eta": self.eta,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "duration": self.duration,
            "timeout": self.timeout,
            "soft_timeout": self.soft_timeout,
            "parents": self.parents,
            "children": self.children,
            "pending_parents": self.pending_parents,
        }
