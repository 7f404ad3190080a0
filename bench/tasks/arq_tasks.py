"""arq: the benchmark task (``arq bench.tasks.arq_tasks.WorkerSettings``)."""

from __future__ import annotations

import asyncio
import os
from importlib.metadata import version as dist_version
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings

from bench.record import record_run

REDIS = RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


async def noop(ctx: dict[str, Any], seq: int) -> None:
    """Record the run; nothing else."""
    record_run(seq)


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


async def _enqueue_all(seqs: list[int]) -> None:
    pool = await create_pool(REDIS)
    try:
        for seq in seqs:
            await pool.enqueue_job("noop", seq)
    finally:
        await pool.aclose()


def enqueue_sequential(seqs: list[int]) -> None:
    """enqueue_job awaited one by one inside one event loop (arq is asyncio-only; no batch API)."""
    asyncio.run(_enqueue_all(seqs))


def enqueue_one(seq: int) -> None:
    """One task (its own event loop; the benchmark loop uses enqueue_sequential)."""
    enqueue_sequential([seq])


def version() -> str:
    """Installed version."""
    return dist_version("arq")
