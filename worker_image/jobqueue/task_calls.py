"""The calls of a task a producer hands to ``add.enqueue_many`` / ``add.aenqueue_many``, the asyncio
client each event loop enqueues through (``await add.aenqueue(...)``), and the typed options of
``@app.task(...)`` its overloads share.

``enqueue_many`` takes, per task, either a tuple or list of positional arguments (``(1, 2)``), or
``add.args(1, y=2)`` for keyword arguments. Only the latter is checked against the function's signature by
a type checker (a tuple cannot carry a ParamSpec); both are checked at run time like any enqueue. A dict
or a pair ``(args, kwargs)`` is deliberately not accepted: for a task whose parameters are a list and a
dict, ``([1], {"a": 1})`` would be ambiguous.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypedDict

from jobqueue.errors import ValidationError
from jobqueue.models import Priority
from jobqueue.retry import BackoffFunction

if TYPE_CHECKING:  # the asyncio client is imported by whoever makes one (App.async_client)
    from jobqueue.broker.aio import AsyncClient

P = ParamSpec("P")

# One batch becomes at most this many tasks: a producer that passes an endless generator gets an error,
# not a process that grows until it is killed.
MAX_CALLS_PER_BATCH = 100_000


class TaskArgs(Generic[P]):
    """The arguments of one call of a task (``add.args(1, y=2)``), typed by the task's parameters."""

    __slots__ = ("args", "kwargs")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"TaskArgs(args={self.args!r}, kwargs={self.kwargs!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskArgs) and (self.args, self.kwargs) == (other.args, other.kwargs)

    __hash__ = None  # type: ignore[assignment]  # holds mutable kwargs


def split_calls(
    calls: Iterable[TaskArgs[Any] | tuple[Any, ...] | list[Any]],
) -> list[tuple[list[Any], dict[str, Any]]]:
    """(args, kwargs) of every call, or a ValidationError whose ``index`` is the first malformed call."""
    if isinstance(calls, (str, bytes, dict)) or not isinstance(calls, Iterable):
        raise ValidationError(
            "calls", "must be a list of calls: tuples of positional arguments or task.args(...)"
        )
    split: list[tuple[list[Any], dict[str, Any]]] = []
    for i, call in enumerate(calls):
        if i >= MAX_CALLS_PER_BATCH:
            raise ValidationError("calls", f"at most {MAX_CALLS_PER_BATCH} tasks per batch")
        if isinstance(call, TaskArgs):
            split.append((list(call.args), dict(call.kwargs)))
        elif isinstance(call, (tuple, list)):
            split.append((list(call), {}))
        else:
            raise ValidationError(
                "args",
                "must be a tuple or list of positional arguments, or task.args(...), "
                f"not {type(call).__name__}",
                index=i,
            )
    return split


class LoopClients:
    """One AsyncClient per running event loop (a redis.asyncio pool belongs to the loop that made it)."""

    def __init__(self, make: Callable[[], AsyncClient]) -> None:
        self._make = make
        # Weak keys: a closed and dropped loop does not keep its entry; its client should have been closed
        # first (App.aclose), since sockets of a loop that is gone cannot be closed cleanly any more.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def current(self) -> AsyncClient:
        """The running loop's client, made on first use; call it from a coroutine only."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._make()
        return client

    async def close_current(self) -> None:
        """Close the running loop's client, if it made one."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.close()


class TaskDecoratorOptions(TypedDict, total=False):
    """The options of ``@app.task(...)`` but ``bind`` (its overloads tell bound tasks apart by it)."""

    name: str | None
    queue: str
    priority: Priority | str
    max_retries: int | None
    retry_backoff: str | BackoffFunction | None
    retry_base: float | None
    retry_max: float | None
    retry_jitter: bool | None
    retry_on: tuple[type[BaseException], ...] | type[BaseException] | None
    timeout: float | None
    soft_timeout: float | None
    result_ttl: int | None
    unique: bool
    unique_ttl: int | None
    unique_rerun: bool
    expires: float | None
