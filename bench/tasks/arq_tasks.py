"""arq: the benchmark task (``arq bench.tasks.arq_tasks.WorkerSettings``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version as dist_version
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings

from bench.io_wait import io_wait
from bench.record import record_run

REDIS = RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


async def noop(ctx: dict[str, Any], seq: int) -> None:
    """Record the run; nothing else. With BENCH_IO_KIND set (bench.io_bound), then await 50 ms."""
    record_run(seq)
    await io_wait()


class WorkerSettings:
    """arq's defaults (max_jobs = 10, poll_delay = 0.5 s)."""

    functions = [noop]
    redis_settings = REDIS


class TunedWorkerSettings:
    """More jobs in flight per poll for a no-op async task; a shorter idle poll. (Not a subclass: arq
    reads the settings class's own __dict__.)"""

    functions = [noop]
    redis_settings = REDIS
    max_jobs = 100
    poll_delay = 0.01


class IoWorkerSettings:
    """bench.io_bound: 1,000 jobs in flight in the one worker process (jobqueue's --concurrency 1000),
    the tuned idle poll."""

    functions = [noop]
    redis_settings = REDIS
    max_jobs = 1000
    poll_delay = 0.01


@asynccontextmanager
async def async_producer() -> AsyncIterator[Callable[[int], Awaitable[object]]]:
    """One arq pool for a whole enqueue run; yields ``enqueue_job("noop", seq)`` (arq is asyncio-only and
    has no batch API)."""
    pool = await create_pool(REDIS)

    async def send(seq: int) -> object:
        return await pool.enqueue_job("noop", seq)

    try:
        yield send
    finally:
        await pool.aclose()


def version() -> str:
    """Installed version."""
    return dist_version("arq")
