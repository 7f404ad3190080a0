"""Application hooks: code of the user's that a worker runs at its own start and stop and around tasks.

Registered on the App (``@app.on_worker_start``, ...; see docs/hooks.md), held here, run by the worker:

- ``on_worker_start`` / ``on_worker_stop``: once per process that serves tasks: the worker process, and
  each child of the process pool (each child of ``--processes`` is a worker process of its own). The
  place to open a database pool or initialise an error reporter per process.
- ``before_task(ctx)`` / ``after_task(ctx, outcome)``: around every attempt, in the thread (or child
  process) that runs it, with the task's TaskContext installed.
- ``on_failure(ctx, exc)``: an attempt raised (or let its soft time limit escape), with the exception,
  where it was raised: what an error reporter wants.
- ``on_dead_letter(notice)``: Redis moved a task to the dead-letter queue; run by the worker process
  (its acker thread) once the move is recorded.

A hook that raises is logged with its traceback (logger ``jobqueue.hooks``, field ``hook``) and
skipped: the next hook still runs, the task's outcome is the one it had, and the worker keeps serving,
like every supervised loop (jobqueue.supervision). Hooks are plain functions: a coroutine function is
refused at registration, since no event loop would await it.
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from jobqueue.context import TaskContext
from jobqueue.errors import ConfigurationError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class HookKind(enum.StrEnum):
    """The hook points."""

    WORKER_START = "on_worker_start"
    WORKER_STOP = "on_worker_stop"
    BEFORE_TASK = "before_task"
    AFTER_TASK = "after_task"
    FAILURE = "on_failure"
    DEAD_LETTER = "on_dead_letter"


@dataclass(frozen=True)
class TaskOutcome:
    """How an attempt ended, as ``after_task`` sees it (before Redis recorded it: a failed attempt may
    still be retried). ``status`` is success, error, timeout, cancelled or rejected."""

    status: str
    error: str = ""

    @property
    def succeeded(self) -> bool:
        """True for a success."""
        return self.status == "success"


@dataclass(frozen=True)
class DeadLetterNotice:
    """A task Redis moved to the dead-letter queue (``on_dead_letter``): its last attempt and error.
    ``status`` is FAILED or TIMEOUT."""

    task_id: str
    name: str
    queue: str
    attempt: int
    status: str
    error: str


@dataclass
class Hooks:
    """The hooks an App registered, by kind, in registration order."""

    registered: dict[HookKind, list[Callable[..., Any]]] = field(
        default_factory=lambda: {kind: [] for kind in HookKind}
    )

    def add(self, kind: HookKind, fn: F) -> F:
        """Register ``fn`` for ``kind``; returns it unchanged (so it works as a decorator)."""
        if not callable(fn):
            raise ConfigurationError(f"{kind.value}: a hook must be a function, got {type(fn).__name__}")
        if inspect.iscoroutinefunction(fn):
            raise ConfigurationError(
                f"{kind.value}: {getattr(fn, '__qualname__', fn)!r} is a coroutine function; hooks are "
                "plain functions (nothing would await it)"
            )
        self.registered[kind].append(fn)
        return fn

    def has(self, kind: HookKind) -> bool:
        """Whether any hook is registered for ``kind`` (the hot path asks before building arguments)."""
        return bool(self.registered[kind])

    def has_task_hooks(self) -> bool:
        """Whether any before_task, after_task or on_failure hook is registered."""
        return any(self.registered[k] for k in (HookKind.BEFORE_TASK, HookKind.AFTER_TASK, HookKind.FAILURE))

    def run(self, kind: HookKind, *args: Any, task_id: str | None = None) -> None:
        """Run every hook of ``kind``; one that raises is logged and skipped (see the module docstring).

        SystemExit is caught too: a hook calling sys.exit() must not end a slot thread or a child
        process (its task would then stay leased, or end CRASHED)."""
        for fn in self.registered[kind]:
            try:
                fn(*args)
            except (Exception, SystemExit) as exc:
                name = getattr(fn, "__qualname__", repr(fn))
                extra: dict[str, Any] = {"hook": f"{kind.value}:{name}"}
                if task_id is not None:
                    extra["task_id"] = task_id
                log.error(
                    "hook %s %s raised %s: %s; ignored",
                    kind.value,
                    name,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                    extra=extra,
                )

    def before_task(self, ctx: TaskContext) -> None:
        """Run the before_task hooks."""
        if self.registered[HookKind.BEFORE_TASK]:
            self.run(HookKind.BEFORE_TASK, ctx, task_id=ctx.id)

    def after_task(self, ctx: TaskContext, status: str, error: str, exc: BaseException | None) -> None:
        """Run on_failure (when the attempt raised ``exc``), then the after_task hooks."""
        if exc is not None and self.registered[HookKind.FAILURE]:
            self.run(HookKind.FAILURE, ctx, exc, task_id=ctx.id)
        if self.registered[HookKind.AFTER_TASK]:
            self.run(HookKind.AFTER_TASK, ctx, TaskOutcome(status, error), task_id=ctx.id)
