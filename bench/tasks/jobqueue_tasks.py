"""jobqueue: the benchmark task (``jobqueue worker --app bench.tasks.jobqueue_tasks:app``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version as dist_version

from bench.io_wait import io_wait
from bench.record import record_run
from jobqueue import App
from jobqueue.broker.enqueue import make_request

QUEUE = "bench"

app = App(redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


@app.task(queue=QUEUE)
def noop(seq: int) -> None:
    """Record the run; nothing else."""
    record_run(seq)


@app.task(queue=QUEUE)
async def anoop(seq: int) -> None:
    """The async pool's no-op (a sync task there would run in the loop's thread-pool executor); with
    BENCH_IO_KIND set, bench.io_bound's I/O-bound task (it awaits 50 ms after recording its start)."""
    record_run(seq)
    await io_wait()


@app.task(queue=QUEUE)
def noop_payload(seq: int, payload: str) -> None:
    """The payload-size runs' no-op: ``payload`` is only carried (encoded, stored, fetched, decoded)."""
    record_run(seq)


def enqueue_one(seq: int) -> None:
    """The usual producer call: one script call, one round trip."""
    noop.enqueue(seq)


@asynccontextmanager
async def concurrent_async_producer() -> AsyncIterator[Callable[[int], Awaitable[object]]]:
    """One ``AsyncClient`` for a whole run, as in an asyncio web server; yields ``noop``'s enqueue through
    it (concurrent calls share round trips: auto-pipelining)."""
    client = app.async_client()

    async def send(seq: int) -> object:
        return await client.enqueue("noop", [seq], queue=QUEUE)

    try:
        yield send
    finally:
        await client.close()


def enqueue_batch(seqs: list[int]) -> None:
    """Client.enqueue_many: one pipelined round trip for the whole batch."""
    app.client.enqueue_many([make_request("noop", [seq], queue=QUEUE) for seq in seqs])


def version() -> str:
    """Installed version."""
    return dist_version("jobqueue")
