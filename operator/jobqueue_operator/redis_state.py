"""Reads of the live Redis state the operator's decisions need (the only Redis I/O of the operator
besides the core's own Client, QueueAdmin and ScheduleRegistry calls)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from jobqueue.broker.client import Client
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.queue_depth import QueueDepth
from jobqueue.broker.redis_io import translate_errors
from jobqueue.models import WorkerState
from jobqueue_operator.pool_plan import Heartbeat, PoolLoad


@dataclass(frozen=True)
class QueueStatus:
    """What a JobQueue's status shows."""

    depth: QueueDepth
    oldest_age: float | None


def read_heartbeats(client: Client) -> dict[str, Heartbeat]:
    """Every registered worker's last heartbeat, by worker id (= pod name in Kubernetes)."""
    now = time.time()
    beats = {}
    for info in client.list_workers():
        beats[info.id] = Heartbeat(
            at=now - info.heartbeat_age,
            in_flight=len(info.in_flight),
            draining=info.status is WorkerState.DRAINING,
        )
    return beats


def read_pool_load(client: Client, queues: Sequence[str], horizon_seconds: float) -> PoolLoad:
    """Ready and in-flight tasks summed over a pool's queues.

    Paused queues count no ready tasks, and a rate-limited queue counts at most what its limiter lets
    start within ``horizon_seconds`` (its remaining burst plus the steady rate): workers added for more
    would only wait on the limiter.
    """
    admin = QueueAdmin(client)
    ready = in_flight = startable = 0
    limited = False
    for queue in queues:
        depth = client.queue_depth(queue)
        in_flight += depth.in_flight
        waiting = 0 if admin.is_paused(queue) else depth.total_ready
        ready += waiting
        stats = admin.rate_limit_stats(queue)
        if stats.enabled and stats.limit and stats.period_seconds:
            limited = True
            allowed = (stats.remaining or 0) + math.floor(
                stats.limit / stats.period_seconds * horizon_seconds
            )
            startable += min(waiting, allowed)
        else:
            startable += waiting
    return PoolLoad(ready=ready, in_flight=in_flight, rate_limit_capacity=startable if limited else None)


def read_queue_status(client: Client, queue: str) -> QueueStatus:
    """Depth per priority, delayed, in-flight, dead-letter size and the oldest ready task's age."""
    return QueueStatus(client.queue_depth(queue), client.oldest_ready_age(queue))


def lease_holders(client: Client, queues: Sequence[str]) -> set[str]:
    """Worker ids holding at least one lease on the given queues."""
    holders: set[str] = set()
    for queue in queues:
        keys = client.queue_keys(queue)
        with translate_errors():
            ids = client.redis.zrange(keys.leases, 0, -1)
            if not ids:
                continue
            pipe = client.redis.pipeline(transaction=False)
            for task_id in ids:
                pipe.hget(keys.task(task_id), "worker")
            holders.update(str(w) for w in pipe.execute() if w)
    return holders
