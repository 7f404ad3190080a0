"""Live state of many queues in a few round trips: what the queue listing and the metrics scrape read.

Reading queues one at a time (``Client.queue_depth``, ``oldest_ready_age``, ``queue_counters``) costs
three or four round trips per queue: about 1 ms each, so 10 s for 10,000 queues. Here every queue of a
chunk is read in one pipeline (counts, the head of each priority list, the stats hash) and a second one
(the enqueue time of those heads, for the oldest ready age), so the cost per queue is the Redis commands
alone. Chunks bound the size of one pipeline's replies held in memory at once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.client import Client, QueueDepth
from jobqueue.broker.live_state import QueueCounters
from jobqueue.broker.redis_io import read_many, read_many_async
from jobqueue.errors import JobQueueError
from jobqueue.keys import QueueKeys

# Queues per pipeline: 1,000 queues are about 10,000 commands and 1 MB of replies.
CHUNK = 1000
_PER_QUEUE = 9  # 3 LLEN, 3 ZCARD, 3 LINDEX (+ HGETALL of the stats hash with counters)


@dataclass(frozen=True)
class QueueState:
    """One queue's depth, the age of its oldest ready task, and (when asked for) its counters."""

    depth: QueueDepth
    oldest_ready_age: float | None
    counters: QueueCounters | None


@functools.lru_cache(maxsize=65536)
def _read_commands(prefix: str, queue: str) -> tuple[tuple[Any, ...], ...]:
    """The first pass's commands of one queue (with the stats hash last): the same for every scrape, and
    building them from QueueKeys was a fifth of a 10,000-queue scrape's CPU."""
    keys = QueueKeys(prefix, queue)
    high, medium, low = keys.ready_all
    return (
        ("LLEN", high),
        ("LLEN", medium),
        ("LLEN", low),
        ("ZCARD", keys.delayed),
        ("ZCARD", keys.leases),
        ("ZCARD", keys.dead),
        ("LINDEX", high, 0),
        ("LINDEX", medium, 0),
        ("LINDEX", low, 0),
        ("HGETALL", keys.stats),
    )


def _first_pass(prefix: str, queues: Sequence[str], with_counters: bool) -> list[tuple[Any, ...]]:
    commands: list[tuple[Any, ...]] = [("TIME",)]
    for queue in queues:
        per_queue = _read_commands(prefix, queue)
        commands += per_queue if with_counters else per_queue[:-1]
    return commands


def _checked(replies: list[Any]) -> list[Any]:
    """The replies, or the first error reply raised (a key of the wrong type: not ours to guess around)."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise JobQueueError(f"Redis error: {reply}") from reply
    return replies


def _heads(prefix: str, queues: Sequence[str], replies: Sequence[Any], stride: int) -> list[tuple[int, str]]:
    """(queue index, task key) of the head of every non-empty ready list."""
    heads = []
    for i, queue in enumerate(queues):
        base = 1 + i * stride
        ids = [task_id for task_id in replies[base + 6 : base + 9] if task_id]
        if ids:
            keys = QueueKeys(prefix, queue)
            heads += [(i, keys.task(task_id)) for task_id in ids]
    return heads


def _states(
    queues: Sequence[str],
    replies: Sequence[Any],
    heads: Sequence[tuple[int, str]],
    stamps: Sequence[Any],
    stride: int,
) -> list[QueueState]:
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    oldest: dict[int, int] = {}
    for (i, _), stamp in zip(heads, stamps, strict=True):
        if stamp:
            oldest[i] = min(oldest.get(i, int(stamp)), int(stamp))
    out = []
    for i, queue in enumerate(queues):
        base = 1 + i * stride
        high, medium, low, delayed, leased, dead = replies[base : base + 6]
        depth = QueueDepth(queue, {"high": high, "medium": medium, "low": low}, delayed, leased, dead)
        age = max(0.0, (now_ms - oldest[i]) / 1000) if i in oldest else None
        counters = None
        if stride > _PER_QUEUE:
            flat = replies[base + _PER_QUEUE]  # HGETALL as RESP: field, value, field, value, ...
            values = {flat[j]: int(flat[j + 1]) for j in range(0, len(flat), 2)}
            counters = QueueCounters(queue, values, now_ms / 1000)
        out.append(QueueState(depth, age, counters))
    return out


def read_queue_states(client: Client, queues: Sequence[str], with_counters: bool = False) -> list[QueueState]:
    """The state of each queue, in order: two round trips per ``CHUNK`` queues."""
    prefix, stride = client.settings.key_prefix, _PER_QUEUE + with_counters
    out: list[QueueState] = []
    for start in range(0, len(queues), CHUNK):
        chunk = queues[start : start + CHUNK]
        replies = _checked(read_many(client.redis, _first_pass(prefix, chunk, with_counters)))
        heads = _heads(prefix, chunk, replies, stride)
        stamps = _checked(read_many(client.redis, [("HGET", key, "enqueued_at") for _, key in heads]))
        out += _states(chunk, replies, heads, stamps, stride)
    return out


async def read_queue_states_async(
    client: AsyncClient, queues: Sequence[str], with_counters: bool = False
) -> list[QueueState]:
    """``read_queue_states`` for asyncio callers (the API's event loop), natively async."""
    prefix, stride = client.settings.key_prefix, _PER_QUEUE + with_counters
    out: list[QueueState] = []
    for start in range(0, len(queues), CHUNK):
        chunk = queues[start : start + CHUNK]
        replies = _checked(await read_many_async(client.redis, _first_pass(prefix, chunk, with_counters)))
        heads = _heads(prefix, chunk, replies, stride)
        stamps = _checked(
            await read_many_async(client.redis, [("HGET", key, "enqueued_at") for _, key in heads])
        )
        out += _states(chunk, replies, heads, stamps, stride)
    return out
