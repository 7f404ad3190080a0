"""RQ: the benchmark task (``rq worker bench``; the job function is ``bench.tasks.rq_tasks.noop``)."""

from __future__ import annotations

import os
from functools import cache
from importlib.metadata import version as dist_version

from redis import Redis
from rq import Queue

from bench.record import record_run

QUEUE = "bench"


def noop(seq: int) -> None:
    """Record the run; nothing else."""
    record_run(seq)


@cache
def _queue() -> Queue:
    return Queue(QUEUE, connection=Redis.from_url(os.environ["BENCH_REDIS_URL"]))


def enqueue_one(seq: int) -> None:
    """Queue.enqueue: RQ's usual producer call."""
    _queue().enqueue(noop, seq)


def enqueue_batch(seqs: list[int]) -> None:
    """Queue.enqueue_many: RQ's pipelined batch enqueue."""
    q = _queue()
    q.enqueue_many([Queue.prepare_data(noop, (seq,)) for seq in seqs])


def version() -> str:
    """Installed version."""
    return dist_version("rq")
