"""Domain values: priorities, statuses, cancel reasons, the immutable task record and a worker's report."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
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
    """Where a task is in its lifecycle. Terminal: SUCCESS, FAILED, TIMEOUT, CANCELLED, EXPIRED."""

    PENDING = "PENDING"  # waiting on dependencies
    QUEUED = "QUEUED"  # ready to be leased
    DELAYED = "DELAYED"  # eta / countdown not reached yet
    RUNNING = "RUNNING"  # leased by a worker
    RETRYING = "RETRYING"  # failed, waiting for its backoff to elapse
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"  # out of retries or not retryable: dead-lettered
    TIMEOUT = "TIMEOUT"  # killed at its hard time limit on the last attempt: dead-lettered
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"  # not started before its expires time: never run (decided at fetch, lua/_lease.lua)

    @property
    def is_terminal(self) -> bool:
        """True once the task can no longer change state by itself."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED, TaskStatus.EXPIRED}
)


class CancelReason(enum.StrEnum):
    """Why a task was cancelled."""

    USER_REQUESTED = "user_requested"
    TIMEOUT = "timeout"
    DEPENDENCY_FAILED = "dependency_failed"
    WORKER_SHUTDOWN = "worker_shutdown"
    SYSTEM_ERROR = "system_error"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    OTHER = "other"


def parse_cancel_reason(reason: CancelReason | str) -> CancelReason:
    """A CancelReason from an enum or its value; ValidationError('reason') for anything else."""
    try:
        return CancelReason(reason)
    except ValueError as exc:
        allowed = ", ".join(r.value for r in CancelReason)
        raise ValidationError("reason", f"{reason!r} is not one of {allowed}") from exc


class DeadLetterReason(enum.StrEnum):
    """Why a task ended in the dead letter queue."""

    MAX_RETRIES_EXCEEDED = "max_retries_exceeded"
    NOT_RETRYABLE = "not_retryable"
    TIMEOUT = "timeout"
    LEASE_LOST_TOO_OFTEN = "lease_lost_too_often"
    MALFORMED = "malformed"
    UNKNOWN_TASK = "unknown_task"


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
    cancel_reason: CancelReason | None = None
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
    expires_at: float | None = None  # not started by then: EXPIRED (the task's own; a queue's is not shown)
    progress: dict[str, Any] | None = None  # the latest ctx.set_progress: {done, total, message, at}

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
            "cancel_reason": None if self.cancel_reason is None else self.cancel_reason.value,
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
            "expires_at": self.expires_at,
            "progress": self.progress,
        }


class WorkerState(enum.StrEnum):
    """What a worker last reported in its heartbeat (DEAD is not reported: readers derive it from the
    heartbeat's age)."""

    ACTIVE = "ACTIVE"  # running at least one task
    IDLE = "IDLE"
    DRAINING = "DRAINING"  # not fetching: stopping, or held by a drain request
    UNKNOWN = "UNKNOWN"  # no state, or one this version does not know


@dataclass(frozen=True)
class WorkerInfo:
    """One worker's last heartbeat report (the worker hash its heartbeat writes), read back typed."""

    id: str
    status: WorkerState
    heartbeat_age: float  # seconds since the last heartbeat
    host: str | None = None
    pid: int | None = None
    queues: tuple[str, ...] = ()
    concurrency: int = 0
    in_flight: tuple[str, ...] = ()  # ids of the tasks it runs
    processed: int = 0
    started_at: float | None = None  # unix seconds
    heartbeat_at: float | None = None  # unix seconds, the worker's clock

    @classmethod
    def from_report(cls, worker_id: str, fields: Mapping[str, str], heartbeat_age: float) -> WorkerInfo:
        """Parse a worker hash. Lenient: a field that is missing or garbled (the hash is written by
        whatever version each worker runs) reads as unknown rather than failing the whole listing."""
        try:
            status = WorkerState(fields.get("status", "UNKNOWN"))
        except ValueError:
            status = WorkerState.UNKNOWN
        try:
            tasks = json.loads(fields.get("in_flight") or "[]")
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder recurses
            tasks = []
        return cls(
            id=worker_id,
            status=status,
            heartbeat_age=heartbeat_age,
            host=fields.get("host"),
            pid=_int_or_none(fields.get("pid")),
            queues=tuple(q for q in fields.get("queues", "").split(",") if q),
            concurrency=_int_or_none(fields.get("concurrency")) or 0,
            in_flight=tuple(str(t) for t in tasks) if isinstance(tasks, list) else (),
            processed=_int_or_none(fields.get("processed")) or 0,
            started_at=_float_or_none(fields.get("started_at")),
            heartbeat_at=_float_or_none(fields.get("heartbeat_at")),
        )


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
