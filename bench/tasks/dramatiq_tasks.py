"""Dramatiq: the benchmark task (``dramatiq bench.tasks.dramatiq_tasks``)."""

from __future__ import annotations

import os
from importlib.metadata import version as dist_version

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.record import record_run

QUEUE = "bench"

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def noop(seq: int) -> None:
    """Record the run; nothing else."""
    record_run(seq)


def enqueue_one(seq: int) -> None:
    """actor.send: Dramatiq's producer call (Dramatiq has no pipelined batch enqueue)."""
    noop.send(seq)


def version() -> str:
    """Installed version."""
    return dist_version("dramatiq")
