"""``App``: the task registry plus lazily created clients; ``@app.task`` turns functions into tasks.

The registered task itself (``TaskDefinition``: its options, direct call, enqueues and workflow
signatures) lives in task_definition.py; this module registers it and owns what it enqueues through.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar, overload

from typing_extensions import Unpack

from jobqueue.broker.client import Client
from jobqueue.context import TaskContext
from jobqueue.errors import ConfigurationError, ValidationError
from jobqueue.expiry import expiry_ms
from jobqueue.hooks import DeadLetterNotice, HookKind, Hooks, TaskOutcome
from jobqueue.keys import validate_queue_name
from jobqueue.models import Priority, parse_priority
from jobqueue.retry import BackoffFunction, own_retry_policy
from jobqueue.settings import Settings
from jobqueue.task_calls import LoopClients, TaskDecoratorOptions
from jobqueue.task_definition import (
    AsyncTaskDefinition,
    BoundAsyncTaskDefinition,
    BoundTaskDefinition,
    TaskOptions,
    definition_class,
)
from jobqueue.task_definition import TaskDefinition as TaskDefinition  # noqa: PLC0414 - public here too

# What only some apps use is imported where it is used, not here: a worker and a producer import this
# module, and the asyncio client alone (with redis.asyncio's client) was most of its import time. The
# imports below are for annotations; tests/unit/test_import_cost.py keeps the start path lean.
if TYPE_CHECKING:
    from jobqueue.broker.aio import AsyncClient
    from jobqueue.broker.queue_admin import QueueAdmin
    from jobqueue.broker.workflows import WorkflowHandle
    from jobqueue.canvas import Canvas
    from jobqueue.schedules.model import ConcurrencyPolicy, Schedule
    from jobqueue.schedules.registry import ScheduleRegistry

P = ParamSpec("P")
R = TypeVar("R")


class _TaskDecorator(Protocol):
    @overload
    def __call__(  # the first match wins: a coroutine function is also a Callable[P, R]
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTaskDefinition[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> TaskDefinition[P, R]: ...


class _BoundTaskDecorator(Protocol):
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[Concatenate[TaskContext, P], Coroutine[Any, Any, R]], /
    ) -> BoundAsyncTaskDefinition[P, R]: ...
    @overload
    def __call__(self, fn: Callable[Concatenate[TaskContext, P], R], /) -> BoundTaskDefinition[P, R]: ...


class App:
    """The entry point of application code.

    ``App()`` reads ``JOBQUEUE_*`` settings; keyword arguments override them (``App(redis_url=...)``).
    Creating an App opens no connection; the first enqueue does.
    """

    def __init__(self, redis_url: str | None = None, *, settings: Settings | None = None, **overrides: Any):
        if redis_url is not None:
            overrides["redis_url"] = redis_url
        self.settings = settings.model_copy(update=overrides) if settings else Settings(**overrides)
        self.registry: dict[str, TaskDefinition[Any, Any]] = {}
        # Declared with @app.periodic; a scheduler started with this app syncs them (schedules/code.py).
        self.periodic_schedules: dict[str, Schedule] = {}
        self.hooks = Hooks()
        self._client: Client | None = None
        self._loop_clients = LoopClients(self.async_client)

    # -- hooks (jobqueue/hooks.py, docs/hooks.md) --------------------------------------------------------

    def on_worker_start(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Run ``fn()`` once in each process that serves tasks, before its first task: the worker
        process and each child of the process pool."""
        return self.hooks.add(HookKind.WORKER_START, fn)

    def on_worker_stop(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Run ``fn()`` once in each such process as it stops after a drain (not when it is killed)."""
        return self.hooks.add(HookKind.WORKER_STOP, fn)

    def before_task(self, fn: Callable[[TaskContext], None]) -> Callable[[TaskContext], None]:
        """Run ``fn(ctx)`` before each attempt, where the attempt runs."""
        return self.hooks.add(HookKind.BEFORE_TASK, fn)

    def after_task(
        self, fn: Callable[[TaskContext, TaskOutcome], None]
    ) -> Callable[[TaskContext, TaskOutcome], None]:
        """Run ``fn(ctx, outcome)`` after each attempt, where it ran, whatever its outcome."""
        return self.hooks.add(HookKind.AFTER_TASK, fn)

    def on_failure(
        self, fn: Callable[[TaskContext, BaseException], None]
    ) -> Callable[[TaskContext, BaseException], None]:
        """Run ``fn(ctx, exc)`` when an attempt raised, where it raised (before after_task)."""
        return self.hooks.add(HookKind.FAILURE, fn)

    def on_dead_letter(self, fn: Callable[[DeadLetterNotice], None]) -> Callable[[DeadLetterNotice], None]:
        """Run ``fn(notice)`` in the worker process once a task was moved to the dead-letter queue."""
        return self.hooks.add(HookKind.DEAD_LETTER, fn)

    @property
    def client(self) -> Client:
        """The synchronous client, created on first use."""
        if self._client is None:
            self._client = Client(self.settings)
        return self._client

    @property
    def queues(self) -> QueueAdmin:
        """Flow control of queues: rate limit, max in-flight, pause / resume, priority policy."""
        from jobqueue.broker.queue_admin import QueueAdmin  # noqa: PLC0415 - only admin code pays it

        return QueueAdmin(self.client)

    @property
    def schedules(self) -> ScheduleRegistry:
        """Recurring (cron) schedules: register, pause, resume, delete, list."""
        from jobqueue.schedules.registry import ScheduleRegistry  # noqa: PLC0415 - croniter on use only

        return ScheduleRegistry(self.client)

    def async_client(self) -> AsyncClient:
        """A new asyncio client (bind one per event loop)."""
        from jobqueue.broker.aio import AsyncClient  # noqa: PLC0415 - only asyncio producers pay for it

        return AsyncClient(self.settings)

    def loop_client(self) -> AsyncClient:
        """The running event loop's asyncio client (``aenqueue`` uses it), created on first use."""
        return self._loop_clients.current()

    def close(self) -> None:
        """Close connections opened by this app (the sync client; ``aclose`` closes a loop's)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the running loop's asyncio client, if ``aenqueue`` made one."""
        await self._loop_clients.close_current()

    def task_queues(self) -> list[str]:
        """Every queue the registered tasks declare, sorted (what a worker for this app serves by
        default under ``jobqueue up`` and ``run_until_idle``)."""
        return sorted({definition.options.queue for definition in self.registry.values()})

    def submit_workflow(self, canvas: Canvas) -> WorkflowHandle:
        """Create every task of a workflow atomically (what ``canvas.apply(app)`` calls)."""
        from jobqueue.broker.workflows import submit  # noqa: PLC0415 - only workflow users pay for it

        return submit(self.client, canvas)

    def periodic(
        self,
        *,
        cron: str,
        tz: str = "UTC",
        queue: str = "default",
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        name: str | None = None,
        priority: Priority | str = Priority.MEDIUM,
        # "Allow" is ConcurrencyPolicy.ALLOW (a StrEnum), spelled out so the model is imported on use.
        concurrency_policy: ConcurrencyPolicy | str = "Allow",
    ) -> Callable[[Callable[P, R]], TaskDefinition[P, R]]:
        """Register the function as a task (named ``name``, default its own name) that a scheduler runs
        at every fire time of ``cron`` in zone ``tz`` with ``args`` / ``kwargs``. The schedule is synced
        when a scheduler starts with this app (``jobqueue scheduler --app``, ``jobqueue up --app``);
        one removed from the code is paused and reported, never deleted silently (docs/schedules.md).
        ConfigurationError now for an invalid cron, zone or arguments."""

        from jobqueue.schedules.code import declare_periodic  # noqa: PLC0415 - croniter on use only

        def register(func: Callable[P, R]) -> TaskDefinition[P, R]:
            task_name = name or func.__name__
            if task_name in self.periodic_schedules:
                raise ConfigurationError(f"@app.periodic {task_name!r} is declared twice")
            # Validated before the task is registered: a bad cron leaves nothing half-declared.
            schedule = declare_periodic(
                task_name,
                cron=cron,
                task=task_name,
                tz=tz,
                queue=queue,
                args=args,
                kwargs=kwargs,
                priority=priority,
                concurrency_policy=concurrency_policy,
            )
            definition: TaskDefinition[P, R] = self.task(name=task_name, queue=queue, priority=priority)(func)
            self.periodic_schedules[task_name] = schedule
            return definition

        return register

    @overload
    def task(  # the first match wins: a coroutine function is also a Callable[P, R]
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncTaskDefinition[P, R]: ...
    @overload
    def task(self, fn: Callable[P, R], /) -> TaskDefinition[P, R]: ...
    @overload
    def task(
        self, fn: None = None, /, *, bind: Literal[True], **options: Unpack[TaskDecoratorOptions]
    ) -> _BoundTaskDecorator: ...
    @overload
    def task(
        self, fn: None = None, /, *, bind: Literal[False] = False, **options: Unpack[TaskDecoratorOptions]
    ) -> _TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: Priority | str = Priority.MEDIUM,
        max_retries: int | None = None,
        retry_backoff: str | BackoffFunction | None = None,
        retry_base: float | None = None,
        retry_max: float | None = None,
        retry_jitter: bool | None = None,
        retry_on: tuple[type[BaseException], ...] | type[BaseException] | None = None,
        timeout: float | None = None,
        soft_timeout: float | None = None,
        result_ttl: int | None = None,
        bind: bool = False,
        unique: bool = False,
        unique_ttl: int | None = None,
        unique_rerun: bool = False,
        expires: float | None = None,
    ) -> Any:
        """Register a function as a task; usable as ``@app.task`` or ``@app.task(...)``.

        Retry options left out (``max_retries``; the backoff ``retry_backoff`` / ``retry_base`` /
        ``retry_max`` / ``retry_jitter``, which go together) follow the queue's retry defaults at the time
        the task fails, else the product defaults: up to JOBQUEUE_DEFAULT_MAX_RETRIES (3) retries,
        exponential from 1 s, capped at 300 s, jittered. No ``timeout``: JOBQUEUE_DEFAULT_TIMEOUT (300 s).

        ``unique=True`` deduplicates every enqueue of the task (see docs/deduplication.md).
        ``expires`` (seconds): an enqueued task not started that long after its enqueue never runs and
        ends EXPIRED (docs/expiry.md)."""

        def register(func: Callable[..., Any]) -> TaskDefinition[Any, Any]:
            task_name = name or func.__name__
            if task_name in self.registry:
                raise ConfigurationError(f"task name {task_name!r} is registered twice")
            validate_queue_name(queue)
            if soft_timeout is not None and timeout is not None and soft_timeout >= timeout:
                raise ValidationError("soft_timeout", "must be less than timeout")
            if expires is not None:
                expiry_ms(expires)  # ValidationError('expires') at decoration, not at the first enqueue
            retry_types = (retry_on,) if isinstance(retry_on, type) else retry_on
            options = TaskOptions(
                queue=queue,
                priority=parse_priority(priority),
                max_retries=max_retries,
                retry=own_retry_policy(retry_backoff, retry_base, retry_max, retry_jitter),
                retry_on=retry_types,
                timeout=timeout,
                soft_timeout=soft_timeout,
                result_ttl=result_ttl,
                bind=bind,
                unique=unique,
                unique_ttl=unique_ttl,
                unique_rerun=unique_rerun,
                expires=expires,
            )
            kind = definition_class(bind, inspect.iscoroutinefunction(func))
            definition: TaskDefinition[Any, Any] = kind(self, func, task_name, options)
            self.registry[task_name] = definition
            return definition

        if fn is not None:
            return register(fn)
        return register


def load_app(spec: str) -> App:
    """Import ``module:attribute`` and return the App it names (the worker's ``--app`` option)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigurationError(f"--app must look like 'package.module:app', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    except Exception as exc:  # the user's module failed while importing: one line, not a traceback
        raise ConfigurationError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    app = getattr(module, attribute, None)
    if not isinstance(app, App):
        raise ConfigurationError(f"{spec!r} is not a jobqueue App")
    return app
