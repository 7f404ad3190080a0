"""Read-only views of live Redis state for dashboards: a queue's lifetime counters, the workers' run time
and queue wait histograms, and a depth-and-utilization snapshot.

These are the reads the API's routes and its Prometheus collector make. They live in the broker, next to
the keys and scripts that write the same hashes, so that the API never holds a Redis connection of its
own (the import contracts in pyproject.toml forbid it) and a key layout change touches one package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.client import Client
from jobqueue.broker.queue_depth import QueueDepth
from jobqueue.broker.raw_reads import read_many
from jobqueue.broker.redis_io import translate_errors
from jobqueue.errors import JobQueueError
from jobqueue.keys import QueueKeys, validate_queue_name


@dataclass(frozen=True)
class QueueCounters:
    """The monotonically increasing counters the transition scripts keep for one queue (its stats hash),
    and the Redis server time they were read at, so callers computing rates share one clock."""

    queue: str
    values: Mapping[str, int]  # only the counters a script has written; see count()
    at: float  # unix seconds, Redis server clock

    def count(self, name: str) -> int:
        """One counter; 0 for a counter no script has incremented yet on this queue."""
        return self.values.get(name, 0)


def _counters(queue: str, raw: Mapping[str, str], time_reply: Sequence[Any]) -> QueueCounters:
    seconds, micros = time_reply
    return QueueCounters(queue, {k: int(v) for k, v in raw.items()}, int(seconds) + int(micros) / 1_000_000)


def queue_counters(client: Client, queue: str) -> QueueCounters:
    """A queue's counters and the server time, in one round trip."""
    with translate_errors():
        pipe = client.redis.pipeline(transaction=False)
        pipe.hgetall(client.queue_keys(queue).stats)
        pipe.execute_command("TIME")  # not pipe.time(): a cluster pipeline refuses that method
        raw, now = pipe.execute()
    return _counters(queue, raw, now)


async def queue_counters_async(client: AsyncClient, queue: str) -> QueueCounters:
    """``queue_counters`` for asyncio callers (the API's event loop), natively async."""
    with translate_errors():
        pipe = client.redis.pipeline(transaction=False)
        pipe.hgetall(QueueKeys(client.settings.key_prefix, validate_queue_name(queue)).stats)
        pipe.execute_command("TIME")  # not pipe.time(): a cluster pipeline refuses that method
        raw, now = await pipe.execute()
    return _counters(queue, raw, now)


def task_metrics_fields(client: Client, queues: Sequence[str]) -> dict[str, dict[str, str]]:
    """The raw task-metrics hash of each queue (decode with broker.task_metrics.read_histograms), in one
    round trip for all of them."""
    prefix = client.settings.key_prefix
    replies = read_many(client.redis, [("HGETALL", QueueKeys(prefix, q).task_metrics) for q in queues])
    out = {}
    for queue, flat in zip(queues, replies, strict=True):
        if isinstance(flat, Exception):
            raise JobQueueError(f"Redis error: {flat}") from flat
        out[queue] = dict(zip(flat[::2], flat[1::2], strict=True))  # HGETALL raw: field, value, ...
    return out


@dataclass(frozen=True)
class LiveSnapshot:
    """Live state from Redis: depth per queue and priority, and how busy the workers are."""

    queues: list[QueueDepth]
    workers: int
    busy_slots: int
    total_slots: int

    @property
    def utilization(self) -> float | None:
        """Share of worker slots running a task; None without workers."""
        return self.busy_slots / self.total_slots if self.total_slots else None


def live_snapshot(client: Client) -> LiveSnapshot:
    """Queue depth per priority and worker utilization, read from Redis (not from the record)."""
    depths = [client.queue_depth(q) for q in client.known_queues()]
    workers = client.list_workers()
    busy = sum(len(w.in_flight) for w in workers)
    total = sum(w.concurrency for w in workers)
    return LiveSnapshot(depths, len(workers), busy, total)
