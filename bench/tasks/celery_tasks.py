"""Celery: the benchmark task (``celery -A bench.tasks.celery_tasks worker -Q bench``)."""

from __future__ import annotations

import os
from importlib.metadata import version as dist_version

from celery import Celery

from bench.record import record_run

QUEUE = "bench"

_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# Defaults otherwise: JSON serializer (Celery's default since 4.0), no result backend configured.
app = Celery("bench", broker=_url)
app.conf.task_default_queue = QUEUE
app.conf.broker_connection_retry_on_startup = True


@app.task(name="noop")
def noop(seq: int) -> None:
    """Record the run; nothing else."""
    record_run(seq)


def enqueue_one(seq: int) -> None:
    """task.delay: Celery's usual producer call (no pipelined batch enqueue in Celery)."""
    noop.delay(seq)


def version() -> str:
    """Installed version."""
    return dist_version("celery")
