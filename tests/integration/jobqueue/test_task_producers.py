"""Producers through a task's definition (issue 20): ``add.enqueue_many`` and ``await add.aenqueue``, on a
real Redis with a real worker process running jq_test_app's tasks of the same names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from jobqueue import App, Priority, Settings, TaskContext, TaskStatus, ValidationError

pytestmark = pytest.mark.timeout(90)
StartWorker = Callable[..., Any]


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def producer_app(settings: Settings) -> Any:
    """An App declaring tasks named like jq_test_app's (the worker runs those)."""
    app = App(settings=settings)

    @app.task(priority=Priority.LOW)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(bind=True)
    def record(ctx: TaskContext, sleep: float = 0.0) -> str:
        return ctx.id

    @app.task
    def echo(value: object) -> object:
        return value

    return app, add, record, echo


def test_enqueue_many_runs_every_call_with_the_tasks_options(
    settings: Settings, start_worker: StartWorker
) -> None:
    app, add, record, _ = producer_app(settings)
    handles = add.enqueue_many([(1, 2), [3, 4], add.args(5, y=6), add.args(x=7, y=8)])
    assert [app.client.get_task(h.id).priority for h in handles] == [Priority.LOW] * 4
    assert app.client.queue_depth("default").ready["low"] == 4
    bound = record.enqueue_many([(), record.args(sleep=0.0)])
    start_worker()
    assert [h.result(timeout=30) for h in handles] == [3, 7, 11, 15]
    assert [h.result(timeout=30) for h in bound] == [bound[0].id, bound[1].id]
    app.close()


def test_enqueue_many_options_apply_to_the_whole_batch(settings: Settings) -> None:
    app, add, _, _ = producer_app(settings)
    handles = add.enqueue_many([(1, 1), (2, 2)], priority="high", countdown=60, queue="batches")
    for h in handles:
        task = app.client.get_task(h.id)
        assert (task.status, task.priority, task.queue) == (TaskStatus.DELAYED, Priority.HIGH, "batches")
    assert add.enqueue_many([]) == []
    # The same per-call overrides through enqueue_with (a queue override used to be a TypeError).
    assert app.client.get_task(add.enqueue_with((1, 2), queue="other").id).queue == "other"
    app.close()


@pytest.mark.parametrize(
    ("calls", "field", "index"),
    [
        ("ab", "calls", None),  # a string is iterable, but not a list of calls
        ({"x": 1}, "calls", None),
        ([(1, 2), {"x": 1}], "args", 1),  # a dict is neither positional arguments nor add.args(...)
        ([(1, 2), 7], "args", 1),
        ([(1, 2), ("a\x00b", 1)], "args", 1),  # NUL: no store may see it
        ([(1, 2), ("\ud800", 1)], "args", 1),  # a lone surrogate
        ([(1, 2), (float("nan"), 1)], "args", 1),  # not JSON
        ([(1, 2), (object(), 1)], "args", 1),
        ([(1, 2), (nested(500), 1)], "args", 1),  # deeper than any store accepts
    ],
)
def test_a_bad_call_in_a_batch_is_refused_and_nothing_is_enqueued(
    settings: Settings, calls: Any, field: str, index: int | None
) -> None:
    app, add, _, _ = producer_app(settings)
    with pytest.raises(ValidationError) as info:
        add.enqueue_many(calls)
    assert (info.value.field.split(".")[0].split("[")[0], info.value.index) == (field, index)
    assert app.client.queue_depth("default").total_ready == 0
    app.close()


def test_aenqueue_and_aenqueue_many_in_two_event_loops(settings: Settings, start_worker: StartWorker) -> None:
    app, add, record, echo = producer_app(settings)
    start_worker()

    async def scenario(x: int) -> list[object]:
        handle = await add.aenqueue(x, 1)
        bound = await record.aenqueue(sleep=0.0)
        batch = await echo.aenqueue_many([("a",), echo.args(value={"k": [x]})])
        values: list[object] = [await handle.result(timeout=30), await bound.result(timeout=30) == bound.id]
        values += [await h.result(timeout=30) for h in batch]
        await app.aclose()  # the loop's client: its connections belong to this loop
        return values

    # One client per loop: a second asyncio.run must not reuse the first loop's (closed) connections.
    assert asyncio.run(scenario(1)) == [2, True, "a", {"k": [1]}]
    assert asyncio.run(scenario(2)) == [3, True, "a", {"k": [2]}]
    app.close()


def test_loop_client_is_refused_outside_a_running_loop(settings: Settings) -> None:
    app = App(settings=settings)
    with pytest.raises(RuntimeError):
        app.loop_client()
