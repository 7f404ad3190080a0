"""The error tree of jobqueue: every exception the library raises derives from ``JobQueueError``.

Driver errors (redis-py, psycopg) are translated at the boundary with ``raise ... from exc`` so callers
never need to import a driver to handle failures.
"""

from __future__ import annotations

import datetime as dt


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


class InvalidProgress(ValidationError):
    """``ctx.set_progress`` was given a value that cannot describe progress (negative, NaN, total below
    done, a message too long or holding a NUL / lone surrogate). Raised in the task, which may catch it."""


class PayloadTooLarge(ValidationError):
    """The serialized task exceeds the configured maximum payload size."""


class NotSerializable(ValidationError):
    """Args, kwargs or a result cannot be represented as JSON."""


class BrokerUnavailable(JobQueueError):
    """Redis could not be reached or answered with a connection-level error."""


class ReplicationIncomplete(BrokerUnavailable):
    """JOBQUEUE_REDIS_WAIT_REPLICAS is set and fewer replicas than asked confirmed a write in time. The
    write did run on the primary (an enqueued task exists, an ack was recorded) but a failover before it
    replicates would lose it. Retrying an enqueue may enqueue the task twice unless it is ``unique=True``;
    a re-sent ack is fenced, so retrying it is safe."""

    def __init__(self, confirmed: int, wanted: int, timeout_ms: int) -> None:
        super().__init__(
            f"only {confirmed} of {wanted} Redis replica(s) confirmed the write within {timeout_ms} ms; "
            "it ran on the primary but a failover now could lose it"
        )
        self.confirmed = confirmed
        self.wanted = wanted


class ScriptCacheLost(BrokerUnavailable):
    """A script call did not run: Redis lost its scripts (SCRIPT FLUSH on a live connection, a server
    switched under a proxy) in the middle of the exchange that carried it, after a later call of that
    exchange touching the same keys had run. Re-running it would have put it after that call, so it was
    not re-run; the scripts are loaded again, and a retry runs it (as a new call, after the others)."""

    def __init__(self, script: str) -> None:
        super().__init__(
            f"the {script!r} call did not run: Redis lost its scripts in the middle of the exchange, "
            "after a later call on the same keys had run (not re-run, so as not to reorder them)"
        )
        self.script = script


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


class TaskExpired(TaskFailed):
    """Raised by ``TaskHandle.result()`` when the task was not started before its ``expires`` time and
    so never ran (status EXPIRED). A TaskFailed, so code that handles failures handles it too."""

    def __init__(self, task_id: str) -> None:
        super().__init__(task_id, "EXPIRED", "not started before it expired: never run", None)


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


# The longest a task may ask to wait before its retry (a year): past that a countdown is a bug (a
# timestamp passed as a countdown), and a huge number would overflow the millisecond arithmetic.
MAX_RETRY_COUNTDOWN_SECONDS = 366 * 86_400.0


class Retry(JobQueueError):
    """Raised by a task to run again later: ``raise Retry(countdown=30, reason="429 from the API")``.

    The attempt ends as a failed attempt with the error ``Retry: <reason>`` and the task waits in the
    delayed set: ``countdown`` seconds, or until ``eta`` (naive = UTC; measured on the worker's clock; in
    the past = at once), or, with neither, its usual retry backoff. It counts as a retry and obeys
    ``max_retries`` (past it the task is dead-lettered, reason max_retries_exceeded) unless
    ``count=False``. ``retry_on`` does not apply: the task asked for it. Bad values raise
    ValidationError inside the task, which then fails like any other error.
    """

    def __init__(
        self,
        countdown: float | None = None,
        *,
        eta: dt.datetime | None = None,
        reason: str = "",
        count: bool = True,
    ) -> None:
        if countdown is not None and eta is not None:
            raise ValidationError("countdown", "give countdown or eta, not both")
        delay: float | None = None
        if countdown is not None:
            if isinstance(countdown, bool) or not isinstance(countdown, int | float):
                raise ValidationError("countdown", "must be a number of seconds")
            # One chained comparison, no float(): NaN fails it, and so does an int too large for a float.
            if not 0 <= countdown <= MAX_RETRY_COUNTDOWN_SECONDS:
                raise ValidationError(
                    "countdown", f"must be between 0 and {MAX_RETRY_COUNTDOWN_SECONDS:.0f} s"
                )
            delay = float(countdown)
        elif eta is not None:
            if not isinstance(eta, dt.datetime):
                raise ValidationError("eta", "must be a datetime")
            when = eta if eta.tzinfo is not None else eta.replace(tzinfo=dt.UTC)
            delay = max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())
            if delay > MAX_RETRY_COUNTDOWN_SECONDS:
                raise ValidationError("eta", "must be within a year")
        if not isinstance(reason, str):
            raise ValidationError("reason", "must be a string")
        super().__init__(reason or "retry requested")
        self.delay_seconds = delay
        self.reason = reason
        self.count = bool(count)
