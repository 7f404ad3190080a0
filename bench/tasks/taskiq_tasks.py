"""Taskiq: the benchmark task (``taskiq worker bench.tasks.taskiq_tasks:broker``).

``RedisStreamBroker`` is the broker taskiq-redis's README starts with: a Redis stream read by a consumer
group, each message acknowledged after the task ran (the at-least-once option; ``ListQueueBroker`` drops a
message once popped). No result backend: the task returns nothing, as for the other systems.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version as dist_version

from taskiq_redis import RedisStreamBroker

from bench.io_wait import io_wait
from bench.record import record_run

QUEUE = "bench"

broker = RedisStreamBroker(
    url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"), queue_name=QUEUE
)


@broker.task(task_name="noop")
async def noop(seq: int) -> None:
    """Record the run; nothing else (async: taskiq's native task style, no thread-pool hop). With
    BENCH_IO_KIND set (bench.io_bound), then await 50 ms."""
    record_run(seq)
    await io_wait()


@asynccontextmanager
async def async_producer() -> AsyncIterator[Callable[[int], Awaitable[object]]]:
    """One started broker (and so one connection pool) for a whole enqueue run; yields ``task.kiq``."""
    await broker.startup()
    try:
        yield noop.kiq
    finally:
        await broker.shutdown()


def version() -> str:
    """Installed version."""
    return f"{dist_version('taskiq')} (taskiq-redis {dist_version('taskiq-redis')})"
