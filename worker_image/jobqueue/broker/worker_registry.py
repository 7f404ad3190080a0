"""A worker's own record in Redis, written by each heartbeat: its state hash and its entry in the worker
registry (a zset scored by the last heartbeat), read by ``Client.list_workers`` and the monitor.

The registry forgets a worker once its last heartbeat is ``WORKER_REGISTRY_RETENTION_SECONDS`` old. A
worker that exits cleanly removes its own entry, but one that is SIGKILLed, OOM-killed or loses its node
does not, and every autoscaled pod has a new id: without a horizon the registry grows with every worker
that ever died, and each listing pays one read per entry. A day keeps a dead worker visible (DEAD, with
its recoveries) long after any lease it held was recovered (``lease_seconds``), and the pruning is one
ZREMRANGEBYSCORE per heartbeat, O(log n) when nothing is old.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import redis

from jobqueue.broker.redis_io import translate_errors
from jobqueue.keys import GlobalKeys

WORKER_REGISTRY_RETENTION_SECONDS = 86400


def publish_worker_record(
    conn: redis.Redis,
    keys: GlobalKeys,
    worker_id: str,
    info: Mapping[str, str | int | float],
    ttl_seconds: int,
) -> str | None:
    """Write the worker's state hash (expiring after ``ttl_seconds``), stamp its registry entry with now,
    forget registry entries older than the retention, and return the drain instruction of its control
    hash (None when there is none): one pipelined round trip."""
    now_ms = int(time.time() * 1000)
    with translate_errors():
        pipe = conn.pipeline(transaction=False)
        key = keys.worker(worker_id)
        pipe.hset(key, mapping=dict(info))
        pipe.expire(key, ttl_seconds)
        pipe.zadd(keys.workers, {worker_id: now_ms})
        pipe.zremrangebyscore(keys.workers, "-inf", f"({now_ms - WORKER_REGISTRY_RETENTION_SECONDS * 1000}")
        pipe.hget(keys.worker_control(worker_id), "drain")
        *_, drain = pipe.execute()
    return None if drain is None else str(drain)
