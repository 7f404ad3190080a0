"""Huey: the benchmark task (``huey_consumer bench.tasks.huey_tasks.huey``)."""

from __future__ import annotations

import os
from importlib.metadata import version as dist_version

from huey import RedisHuey

from bench.record import record_run

# Defaults otherwise (results on: a task returning None stores nothing unless store_none=True).
huey = RedisHuey("bench", url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


@huey.task()
def noop(seq: int) -> None:
    """Record the run; nothing else."""
    record_run(seq)


def enqueue_one(seq: int) -> None:
    """Calling a task enqueues it (Huey has no pipelined batch enqueue)."""
    noop(seq)


def version() -> str:
    """Installed version."""
    return dist_version("huey")
