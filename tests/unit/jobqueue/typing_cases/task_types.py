"""Checked by mypy from test_task_typing.py, never run. A line ending in an "expect" comment must get a
mypy message containing the comment's text on that line; every other line must get none."""

from __future__ import annotations

from typing import reveal_type

from jobqueue import App, TaskContext

app = App()


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task(queue="reports", max_retries=2)
def render(name: str, *, pages: int = 1) -> list[str]:
    return [name] * pages


@app.task(bind=True)
def resize(ctx: TaskContext, path: str, width: int = 100) -> str:
    return f"{ctx.id}:{path}:{width}"


@app.task
async def fetch(url: str) -> bytes:
    return url.encode()


@app.task(bind=True, timeout=5)
async def crawl(ctx: TaskContext, url: str) -> dict[str, int]:
    return {url: ctx.attempt}


def producer() -> None:
    total: int = add.enqueue(1, 2).result(timeout=10)
    reveal_type(add.enqueue(1, 2))  # expect: TaskHandle[int]
    reveal_type(add.enqueue(1, 2).result())  # expect: Revealed type is "int"
    reveal_type(render.enqueue("a", pages=2).result())  # expect: list[str]
    reveal_type(add.enqueue_in(5, 1, 2).result())  # expect: Revealed type is "int"
    reveal_type(add.enqueue_many([(1, 2), add.args(3, y=4)]))  # expect: client.TaskHandle[int]]
    # bind=True: callers pass what follows the context, and get the return type.
    reveal_type(resize.enqueue("a.png", width=50).result())  # expect: Revealed type is "str"
    resize.enqueue("a.png")
    # async def: the handle yields the awaited value, not a coroutine.
    reveal_type(fetch.enqueue("https://x").result())  # expect: Revealed type is "bytes"
    reveal_type(crawl.enqueue("https://x").result())  # expect: dict[str, int]
    # Direct calls stay the function as written.
    reveal_type(add(1, 2))  # expect: Revealed type is "int"
    print(total)


def direct_calls(ctx: TaskContext) -> None:
    reveal_type(resize(ctx, "a.png"))  # expect: Revealed type is "str"
    reveal_type(fetch("https://x"))  # expect: Coroutine[Any, Any, bytes]
    resize("a.png")  # expect: incompatible type "str"; expected "TaskContext"


def mistakes(ctx: TaskContext) -> None:
    add.enqueue("1", 2)  # expect: Argument 1 to "enqueue" of "TaskDefinition" has incompatible type "str"
    add.enqueue(1)  # expect: Missing positional argument "y"
    add.args(1, z=2)  # expect: Unexpected keyword argument "z"
    resize.enqueue(ctx, "a.png")  # expect: incompatible type "TaskContext"; expected "str"
    render.enqueue("a", 2)  # expect: Too many positional arguments
    text: str = add.enqueue(1, 2).result()  # expect: Incompatible types in assignment
    print(text)


async def async_producer() -> None:
    handle = await add.aenqueue(1, 2)
    reveal_type(handle)  # expect: AsyncTaskHandle[int]
    reveal_type(await handle.result(timeout=5))  # expect: Revealed type is "int"
    reveal_type(await resize.aenqueue("a.png"))  # expect: AsyncTaskHandle[str]
    handles = await add.aenqueue_many([(1, 2)])
    reveal_type(handles)  # expect: list[jobqueue.broker.aio.AsyncTaskHandle[int]]
    await add.aenqueue("x", 1)  # expect: "aenqueue" of "TaskDefinition" has incompatible type "str"
    await app.aclose()
