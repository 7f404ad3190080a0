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

import bisect
import time
from collections.abc import Mapping, Sequence

import redis

from jobqueue.broker.redis_io import translate_errors
from jobqueue.keys import GlobalKeys
from jobqueue.models import WorkerInfo

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


def read_workers(conn: redis.Redis, keys: GlobalKeys) -> list[WorkerInfo]:
    """Every worker in the registry whose state hash has not expired, in registry (heartbeat) order: two
    round trips."""
    with translate_errors():
        beats = conn.zrange(keys.workers, 0, -1, withscores=True)
    return _infos(conn, keys, beats)


def read_worker_page(
    conn: redis.Redis, keys: GlobalKeys, after: str | None, limit: int
) -> tuple[list[WorkerInfo], int, str | None]:
    """One page of workers in id order, those after ``after``: (the page, the registry's size, the cursor
    of the next page or None). Reads every id and score (one call, a day's workers) but only the page's
    state hashes, so a page costs the same whatever the fleet's size. A worker whose hash expired is left
    out, so a page may hold fewer than ``limit``."""
    with translate_errors():
        beats = sorted(conn.zrange(keys.workers, 0, -1, withscores=True))
    start = bisect.bisect_right([worker_id for worker_id, _ in beats], after) if after is not None else 0
    page = beats[start : start + limit]
    cursor = page[-1][0] if page and start + limit < len(beats) else None
    return _infos(conn, keys, page), len(beats), cursor


def read_worker(conn: redis.Redis, keys: GlobalKeys, worker_id: str) -> WorkerInfo | None:
    """One worker, or None when it is not registered or its state hash expired: one round trip."""
    with translate_errors():
        pipe = conn.pipeline(transaction=False)
        pipe.zscore(keys.workers, worker_id)
        pipe.hgetall(keys.worker(worker_id))
        beat, info = pipe.execute()
    if beat is None or not info:
        return None
    return WorkerInfo.from_report(worker_id, info, max(0.0, (time.time() * 1000 - beat) / 1000))


def _infos(conn: redis.Redis, keys: GlobalKeys, beats: Sequence[tuple[str, float]]) -> list[WorkerInfo]:
    with translate_errors():
        pipe = conn.pipeline(transaction=False)
        for worker_id, _ in beats:
            pipe.hgetall(keys.worker(worker_id))
        infos = pipe.execute() if beats else []
    now_ms = time.time() * 1000
    return [
        WorkerInfo.from_report(worker_id, info, max(0.0, (now_ms - beat_ms) / 1000))
        for (worker_id, beat_ms), info in zip(beats, infos, strict=True)
        if info  # its hash expired: the worker is gone, only its registry entry lingers
    ]
