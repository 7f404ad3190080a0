"""What ``@app.task`` makes of a function: its options and the ``TaskDefinition`` that enqueues it.

Apart from ``App`` (app.py) because a definition is the task's own side: how one call becomes an enqueue
request, a batch, an asyncio enqueue or a workflow signature, with the task's defaults under the call's
options. The App holds the registry of definitions and the clients they enqueue through.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

from typing_extensions import Unpack

from jobqueue.broker.enqueue import EnqueueOptions, EnqueueRequest, make_request
from jobqueue.canvas import Signature
from jobqueue.context import TaskContext
from jobqueue.errors import ValidationError
from jobqueue.models import Priority
from jobqueue.retry import RetryPolicy
from jobqueue.task_calls import TaskArgs, split_calls

if TYPE_CHECKING:
    from jobqueue.broker.aio import AsyncClient, AsyncTaskHandle
    from jobqueue.broker.client import Client, TaskHandle


class TaskOwner(Protocol):
    """What a definition needs of the App that registered it: the clients it enqueues through. A protocol,
    not the App itself, so this module does not depend back on app.py (which imports it)."""

    @property
    def client(self) -> Client: ...

    def loop_client(self) -> AsyncClient: ...


P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class TaskOptions:
    """Per-task defaults; enqueue-time options override them."""

    queue: str = "default"
    priority: Priority = Priority.MEDIUM
    # None: the queue's default (QueueAdmin.set_retry_defaults) decides, at failure time.
    max_retries: int | None = None
    retry: RetryPolicy | None = None
    retry_on: tuple[type[BaseException], ...] | None = None
    timeout: float | None = None
    soft_timeout: float | None = None
    result_ttl: int | None = None
    bind: bool = False
    unique: bool = False
    unique_ttl: int | None = None
    unique_rerun: bool = False
    expires: float | None = None  # seconds after each enqueue: not started by then, it ends EXPIRED


class TaskDefinition(Generic[P, R]):
    """A registered task: callable like the function, plus ways to enqueue it.

    ``P`` is what a caller passes when enqueueing (without the TaskContext of a ``bind=True`` task) and
    ``R`` the result a handle returns (the awaited value of an ``async def`` task)."""

    def __init__(self, app: TaskOwner, fn: Callable[..., Any], name: str, options: TaskOptions) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)

    def __repr__(self) -> str:
        return f"<task {self.name} queue={self.options.queue}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)  # type: ignore[no-any-return]  # fn is the Callable[P, R] it was given

    def should_retry(self, exc: BaseException) -> bool:
        """Whether this exception type may be retried under the task's ``retry_on`` rule."""
        if self.options.retry_on is None:
            return True
        return isinstance(exc, self.options.retry_on)

    def _request(self, args: Iterable[Any], kwargs: dict[str, Any], **when: Any) -> EnqueueRequest:
        o = self.options
        # The task's options, then the call's (a call may override any of them, queue and priority too).
        options: dict[str, Any] = {
            "queue": o.queue,
            "priority": o.priority,
            "max_retries": o.max_retries,
            "timeout": o.timeout,
            "soft_timeout": o.soft_timeout,
            "result_ttl": o.result_ttl,
            "unique": o.unique,
            "unique_ttl": o.unique_ttl,
            "unique_rerun": o.unique_rerun,
        }
        if o.expires is not None:
            options["expires"] = o.expires
        options.update(when)
        return make_request(self.name, list(args), kwargs, **options)

    def _enqueue(self, args: tuple[Any, ...], kwargs: dict[str, Any], **when: Any) -> TaskHandle[R]:
        return self.app.client.enqueue_many([self._request(args, kwargs, **when)])[0]

    def enqueue_with(
        self, args: tuple[Any, ...] | list[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> TaskHandle[R]:
        """Enqueue with per-call options overriding the task's (any ``make_request`` option: unique,
        unique_key, unique_ttl, unique_rerun, depends_on, countdown, eta, expires, ...)."""
        return self._enqueue(tuple(args), kwargs or {}, **options)

    def args(self, *args: P.args, **kwargs: P.kwargs) -> TaskArgs[P]:
        """The arguments of one call, checked against the task's parameters: an item of enqueue_many."""
        return TaskArgs(args, kwargs)

    def _batch(
        self, calls: Iterable[TaskArgs[P] | tuple[Any, ...] | list[Any]], options: EnqueueOptions
    ) -> list[EnqueueRequest]:
        requests = []
        for i, (args, kwargs) in enumerate(split_calls(calls)):
            try:
                requests.append(self._request(args, kwargs, **options))
            except ValidationError as exc:
                raise exc.at_index(i) from exc  # which call of the batch, as Client.enqueue_many says
        return requests

    def enqueue_many(
        self, calls: Iterable[TaskArgs[P] | tuple[Any, ...] | list[Any]], **options: Unpack[EnqueueOptions]
    ) -> list[TaskHandle[R]]:
        """Enqueue one task per call in one pipelined round trip (``add.enqueue_many([(1, 2), (3, 4)])``;
        keyword arguments through ``add.args(1, y=2)``), with the task's options, overridden by
        ``options`` for all of them. Every call is validated first: one bad call enqueues nothing."""
        requests = self._batch(calls, options)
        return self.app.client.enqueue_many(requests) if requests else []

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> AsyncTaskHandle[R]:
        """``enqueue`` for asyncio code, through the running loop's AsyncClient (close it with
        ``await app.aclose()`` before the loop ends)."""
        return (await self.app.loop_client().enqueue_many([self._request(args, kwargs)]))[0]

    async def aenqueue_many(
        self, calls: Iterable[TaskArgs[P] | tuple[Any, ...] | list[Any]], **options: Unpack[EnqueueOptions]
    ) -> list[AsyncTaskHandle[R]]:
        """``enqueue_many`` for asyncio code (see ``aenqueue``)."""
        requests = self._batch(calls, options)
        return await self.app.loop_client().enqueue_many(requests) if requests else []

    def _signature(self, args: tuple[Any, ...], kwargs: dict[str, Any], immutable: bool) -> Signature:
        o = self.options
        options = {
            "queue": o.queue,
            "priority": o.priority.value,
            "max_retries": o.max_retries,
            "timeout": o.timeout,
            "soft_timeout": o.soft_timeout,
            "result_ttl": o.result_ttl,
        }
        return Signature(self.name, args, kwargs, options, immutable)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """A signature for workflows; in a chain it receives the previous result as its first argument."""
        return self._signature(args, kwargs, immutable=False)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """An immutable signature: it never receives a parent's result."""
        return self._signature(args, kwargs, immutable=True)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        """Enqueue now with the task's default options."""
        return self._enqueue(args, kwargs)

    def enqueue_in(self, countdown: float, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        """Enqueue to start after ``countdown`` seconds (measured on the Redis server clock)."""
        return self._enqueue(args, kwargs, countdown=countdown)

    def enqueue_at(self, eta: dt.datetime, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        """Enqueue to start at ``eta`` (naive datetimes are taken as UTC)."""
        return self._enqueue(args, kwargs, eta=eta)


# Called directly, a bound or async task is the function as written (the context first; a coroutine);
# enqueued, it takes P and yields R. The direct call is what differs, so its signature is overridden.
class BoundTaskDefinition(TaskDefinition[P, R]):
    """A ``bind=True`` task: a direct call passes the TaskContext first, an enqueue does not."""

    def __call__(self, ctx: TaskContext, /, *args: P.args, **kwargs: P.kwargs) -> R:  # type: ignore[override]
        return self.fn(ctx, *args, **kwargs)  # type: ignore[no-any-return]


class AsyncTaskDefinition(TaskDefinition[P, R]):
    """An ``async def`` task: a direct call returns the coroutine; a handle's result is its value."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:  # type: ignore[override]
        return self.fn(*args, **kwargs)  # type: ignore[no-any-return]


class BoundAsyncTaskDefinition(TaskDefinition[P, R]):
    """An ``async def`` task with ``bind=True``."""

    def __call__(  # type: ignore[override]
        self, ctx: TaskContext, /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, R]:
        return self.fn(ctx, *args, **kwargs)  # type: ignore[no-any-return]


_DEFINITION_CLASSES: dict[tuple[bool, bool], type[TaskDefinition[Any, Any]]] = {
    (False, False): TaskDefinition,
    (True, False): BoundTaskDefinition,
    (False, True): AsyncTaskDefinition,
    (True, True): BoundAsyncTaskDefinition,
}


def definition_class(bind: bool, is_async: bool) -> type[TaskDefinition[Any, Any]]:
    """The definition whose direct call matches the function: with the TaskContext first (``bind``),
    returning a coroutine (``async def``), both, or neither."""
    return _DEFINITION_CLASSES[(bind, is_async)]
