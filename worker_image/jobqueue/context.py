"""What a running task can see about itself: ``ctx`` (with ``bind=True``) or ``current_context()``."""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobqueue.errors import JobQueueError
from jobqueue.progress import progress_value

_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar("jobqueue_task", default=None)


@dataclass
class TaskContext:
    """Identity of the running attempt, a logger bound to it, and the cancellation check."""

    id: str
    name: str
    queue: str
    attempt: int
    retries: int
    max_retries: int
    _cancel_check: Callable[[], bool] = field(repr=False)
    # Where set_progress sends a validated value (worker/progress.py: throttled); None: nowhere.
    _report_progress: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)

    @functools.cached_property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger named after the task whose records carry task_id, task, queue and attempt."""
        # Built on first use: most tasks never log, and getLogger takes the logging module's lock.
        extra: dict[str, Any] = {
            "task_id": self.id,
            "task": self.name,
            "queue": self.queue,
            "attempt": self.attempt,
        }
        return logging.LoggerAdapter(logging.getLogger(f"jobqueue.task.{self.name}"), extra)

    def is_cancelled(self) -> bool:
        """True once someone asked to cancel this task; long tasks should check it and stop early."""
        return self._cancel_check()

    def set_progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report how far the task got: shown as the task's ``progress`` (get_task, the API, the UI's bar,
        ``jobqueue status``). Call it as often as you like: the worker writes at most one value per
        JOBQUEUE_PROGRESS_INTERVAL_SECONDS and always the last one before the outcome.
        InvalidProgress (a ValueError) for a negative or non-finite number, ``total < done``, or a message
        over 1000 characters or holding a NUL / lone surrogate."""
        value = progress_value(done, total, message)
        if self._report_progress is not None:
            self._report_progress(value)


def current_context() -> TaskContext:
    """The context of the task running in this thread / asyncio task."""
    ctx = _current.get()
    if ctx is None:
        raise JobQueueError("current_context() called outside a running task")
    return ctx


def set_current(ctx: TaskContext | None) -> contextvars.Token[TaskContext | None]:
    """Install ``ctx`` as the running task's context (used by the executors)."""
    return _current.set(ctx)


def reset_current(token: contextvars.Token[TaskContext | None]) -> None:
    """Undo set_current."""
    _current.reset(token)
