"""The error tree of jobqueue: every exception the library raises derives from ``JobQueueError``.

Driver errors (redis-py, psycopg) are translated at the boundary with ``raise ... from exc`` so callers
never need to import a driver to handle failures.
"""

from __future__ import annotations


class JobQueueError(Exception):
    """Root of every error raised by jobqueue."""


class ConfigurationError(JobQueueError):
    """Settings or task options are invalid (unknown priority, bad backoff name, ...)."""


class ValidationError(JobQueueError, ValueError):
    """A value given by the caller is invalid; ``field`` names the offending input, and ``index`` the
    request it belongs to when it came in a batch (None otherwise)."""

    def __init__(self, field: str, message: str, index: int | None = None) -> None:
        super().__init__(f"{field}: {message}" if index is None else f"[{index}].{field}: {message}")
        self.field = field
        self.message = message
        self.index = index

    def at_index(self, index: int) -> ValidationError:
        """The same error (same class) about the ``index``-th request of a batch."""
        return type(self)(self.field, self.message, index)


class PayloadTooLarge(ValidationError):
    """The serialized task exceeds the configured maximum payload size."""


class NotSerializable(ValidationError):
    """Args, kwargs or a result cannot be represented as JSON."""


class BrokerUnavailable(JobQueueError):
    """Redis could not be reached or answered with a connection-level error."""


class TaskNotFound(JobQueueError, LookupError):
    """No task (or no result, once its TTL expired) exists with this id."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id!r} not found")
        self.task_id = task_id


class ScheduleNotFound(JobQueueError, LookupError):
    """No recurring schedule exists with this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"schedule {name!r} not found")
        self.name = name


class ScheduleCorrupt(JobQueueError):
    """A stored schedule definition cannot be read (edited by hand, or written by an incompatible version);
    delete the schedule and register it again."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"schedule {name!r} has an unreadable definition: {reason}")
        self.name = name
        self.reason = reason


class InvalidTransition(JobQueueError):
    """The task is not in a state that allows the requested operation (e.g. cancel a finished task)."""


class TaskFailed(JobQueueError):
    """Raised by ``TaskHandle.result()`` when the task ended in failure (FAILED, TIMEOUT)."""

    def __init__(self, task_id: str, status: str, error: str | None, traceback: str | None) -> None:
        super().__init__(f"task {task_id} ended {status}: {error}")
        self.task_id = task_id
        self.status = status
        self.error = error
        self.traceback = traceback


class TaskCancelled(JobQueueError):
    """Raised by ``TaskHandle.result()`` when the task was cancelled, and inside a task on force cancel."""

    def __init__(self, task_id: str, reason: str | None) -> None:
        super().__init__(f"task {task_id} cancelled: {reason}")
        self.task_id = task_id
        self.reason = reason


class ForceCancelled(TaskCancelled):
    """Raised inside a task's thread on force cancel (thread pool). Built without arguments: the
    interpreter instantiates an exception injected into a thread from its class alone, and
    ``TaskCancelled``'s constructor needs the task id (injecting it raised a TypeError instead, which
    counted as a failure and was retried)."""

    def __init__(self) -> None:
        super().__init__("", "force-cancelled")

    def __str__(self) -> str:
        return "force-cancelled"


class ResultTimeout(JobQueueError, TimeoutError):
    """``TaskHandle.result(timeout=...)`` gave up before the task finished."""


class SoftTimeout(JobQueueError):
    """Raised inside a running task when it reaches its soft time limit; it may clean up and return."""


class TaskTimeout(JobQueueError, TimeoutError):
    """A task ran past its hard time limit and was stopped (recorded as the attempt's error)."""


class WorkerCrashed(JobQueueError):
    """The process running a task died without reporting (segfault, OOM kill, os._exit)."""


class RecordError(JobQueueError):
    """The durable record (PostgreSQL) rejected an operation: a bug or a schema mismatch, not an outage."""


class RecordUnavailable(RecordError):
    """PostgreSQL could not be reached or dropped the connection; retrying later may succeed."""


class RunTimeout(JobQueueError, TimeoutError):
    """``run_until_idle`` gave up before its queues were idle; ``summary`` holds what finished."""

    def __init__(self, message: str, summary: object) -> None:
        super().__init__(message)
        self.summary = summary


class PoolNotFound(JobQueueError, LookupError):
    """No worker pool exists with this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"worker pool {name!r} not found")
        self.name = name


class PoolExists(JobQueueError):
    """A worker pool with this name already exists (names are unique per backend)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"worker pool {name!r} already exists")
        self.name = name


class PoolsUnavailable(JobQueueError):
    """No pool backend is configured for this API (see JOBQUEUE_API_POOLS_BACKEND)."""
