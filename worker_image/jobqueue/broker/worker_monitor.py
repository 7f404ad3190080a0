"""The Redis reads behind worker monitoring (jobqueue/worker_monitor.py decides what they mean): the
worker registry and heartbeat records, each queue's recoveries hash (written by recover.lua) and the
leases each queue holds, with the worker each leased task names. Read-only, a few pipelined round
trips whatever the number of queues."""

from __future__ import annotations

import asyncio
import time

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.client import Client
from jobqueue.broker.redis_io import translate_errors
from jobqueue.worker_monitor import HeldLease, MonitorInput, QueueRecoveries

# Leases read per queue: a monitoring read must stay bounded however many tasks run at once. Leases
# are read soonest-expiring first, so the orphans (expired, not yet recovered) come before live ones.
MAX_LEASES_PER_QUEUE = 1000


def read_monitor_input(client: Client, max_leases: int = MAX_LEASES_PER_QUEUE) -> MonitorInput:
    """Everything monitor_stats needs, read in three pipelined round trips."""
    queues = client.known_queues()
    registry = client.global_keys.workers
    with translate_errors():
        pipe = client.redis.pipeline(transaction=False)
        pipe.zrange(registry, 0, -1, withscores=True)
        for queue in queues:
            keys = client.queue_keys(queue)
            pipe.hgetall(keys.recoveries)
            pipe.zrange(keys.leases, 0, max_leases - 1, withscores=True)
        beats, *per_queue = pipe.execute()
        now = time.time()
        pipe = client.redis.pipeline(transaction=False)
        for worker_id, _ in beats:
            pipe.exists(client.global_keys.worker(worker_id))
        leased = [
            (q, task_id, score)
            for q, ids in zip(queues, per_queue[1::2], strict=True)
            for task_id, score in ids
        ]
        for queue, task_id, _ in leased:
            pipe.hget(client.queue_keys(queue).task(task_id), "worker")
        replies = pipe.execute()
    reported = frozenset(w for (w, _), exists in zip(beats, replies, strict=False) if exists)
    owners = replies[len(beats) :]
    return MonitorInput(
        heartbeats={w: score / 1000 for w, score in beats},
        reported=reported,
        recoveries={
            q: QueueRecoveries.parse(fields) for q, fields in zip(queues, per_queue[0::2], strict=True)
        },
        leases=[
            HeldLease(queue, task_id, owner or "", score / 1000)
            for (queue, task_id, score), owner in zip(leased, owners, strict=True)
        ],
        now=now,
    )


async def read_monitor_input_async(client: AsyncClient) -> MonitorInput:
    """``read_monitor_input`` for the API's event loop (a worker thread, as the other multi-step reads)."""
    return await asyncio.to_thread(read_monitor_input, client.sync)
