"""Live state of many queues in a few round trips: what the queue listing and the metrics scrape read.

Reading queues one at a time (``Client.queue_depth``, ``oldest_ready_age``, ``queue_counters``) costs
three or four round trips per queue: about 1 ms each, so 10 s for 10,000 queues. Here every queue of a
chunk is read in one pipeline of ``queue_state`` script calls (counts, the head of each priority list, the
stats hash: one call per queue, lua/queue_state.lua) and a second pipeline (the enqueue time of those
heads, for the oldest ready age). Chunks bound the size of one pipeline's replies held in memory at once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.client import Client
from jobqueue.broker.live_state import QueueCounters
from jobqueue.broker.queue_depth import QueueDepth
from jobqueue.broker.raw_reads import read_many, read_many_async
from jobqueue.broker.redis_io import load_all_scripts, load_all_scripts_async, script_sha
from jobqueue.broker.script_cache import is_noscript
from jobqueue.errors import JobQueueError
from jobqueue.keys import QueueKeys

# Queues per pipeline: 1,000 queues are 1,000 script calls and about 100 KB of replies.
CHUNK = 1000


@dataclass(frozen=True)
class QueueState:
    """One queue's depth, the age of its oldest ready task, and (when asked for) its counters."""

    depth: QueueDepth
    oldest_ready_age: float | None
    counters: QueueCounters | None


@functools.lru_cache(maxsize=65536)
def _state_call(prefix: str, queue: str) -> tuple[Any, ...]:
    """The queue_state call of one queue, without its last ARGV: the same every scrape, and building it
    from QueueKeys was a fifth of a 10,000-queue scrape's CPU."""
    keys = QueueKeys(prefix, queue)
    return (
        "EVALSHA",
        script_sha("queue_state"),
        7,
        *keys.ready_all,
        keys.delayed,
        keys.leases,
        keys.dead,
        keys.stats,
    )


def _first_pass(prefix: str, queues: Sequence[str], with_counters: bool) -> list[tuple[Any, ...]]:
    flag = "1" if with_counters else "0"
    return [("TIME",), *((*_state_call(prefix, queue), flag) for queue in queues)]


def _missing_script(replies: Sequence[Any]) -> bool:
    """Whether Redis did not know the script (its scripts flushed under a live connection): load every
    script (never one alone: see script_cache), read again (a read of its own, re-run whole)."""
    return any(is_noscript(r) for r in replies)


def _checked(replies: list[Any]) -> list[Any]:
    """The replies, or the first error reply raised (a key of the wrong type: not ours to guess around)."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise JobQueueError(f"Redis error: {reply}") from reply
    return replies


def _heads(prefix: str, queues: Sequence[str], replies: Sequence[Any]) -> list[tuple[int, str]]:
    """(queue index, task key) of the head of every non-empty ready list."""
    heads = []
    for i, queue in enumerate(queues):
        ids = [task_id for task_id in replies[1 + i][6:9] if task_id]
        if ids:
            keys = QueueKeys(prefix, queue)
            heads += [(i, keys.task(task_id)) for task_id in ids]
    return heads


def _states(
    queues: Sequence[str],
    replies: Sequence[Any],
    heads: Sequence[tuple[int, str]],
    stamps: Sequence[Any],
    with_counters: bool,
) -> list[QueueState]:
    seconds, micros = replies[0]
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    oldest: dict[int, int] = {}
    for (i, _), stamp in zip(heads, stamps, strict=True):
        if stamp:
            oldest[i] = min(oldest.get(i, int(stamp)), int(stamp))
    out = []
    for i, queue in enumerate(queues):
        high, medium, low, delayed, leased, dead, _, _, _, flat = replies[1 + i]
        depth = QueueDepth(queue, {"high": high, "medium": medium, "low": low}, delayed, leased, dead)
        age = max(0.0, (now_ms - oldest[i]) / 1000) if i in oldest else None
        counters = None
        if with_counters:  # the stats hash as field, value, field, value, ...
            values = {flat[j]: int(flat[j + 1]) for j in range(0, len(flat), 2)}
            counters = QueueCounters(queue, values, now_ms / 1000)
        out.append(QueueState(depth, age, counters))
    return out


def read_queue_states(client: Client, queues: Sequence[str], with_counters: bool = False) -> list[QueueState]:
    """The state of each queue, in order: two round trips per ``CHUNK`` queues."""
    prefix = client.settings.key_prefix
    out: list[QueueState] = []
    for start in range(0, len(queues), CHUNK):
        chunk = queues[start : start + CHUNK]
        commands = _first_pass(prefix, chunk, with_counters)
        replies = read_many(client.redis, commands)
        if _missing_script(replies):
            load_all_scripts(client.redis)
            replies = read_many(client.redis, commands)
        heads = _heads(prefix, chunk, _checked(replies))
        stamps = _checked(read_many(client.redis, [("HGET", key, "enqueued_at") for _, key in heads]))
        out += _states(chunk, replies, heads, stamps, with_counters)
    return out


async def read_queue_states_async(
    client: AsyncClient, queues: Sequence[str], with_counters: bool = False
) -> list[QueueState]:
    """``read_queue_states`` for asyncio callers (the API's event loop), natively async."""
    prefix = client.settings.key_prefix
    out: list[QueueState] = []
    for start in range(0, len(queues), CHUNK):
        chunk = queues[start : start + CHUNK]
        commands = _first_pass(prefix, chunk, with_counters)
        replies = await read_many_async(client.redis, commands)
        if _missing_script(replies):
            await load_all_scripts_async(client.redis)
            replies = await read_many_async(client.redis, commands)
        heads = _heads(prefix, chunk, _checked(replies))
        stamps = _checked(
            await read_many_async(client.redis, [("HGET", key, "enqueued_at") for _, key in heads])
        )
        out += _states(chunk, replies, heads, stamps, with_counters)
    return out
