"""Live counts of one queue for the sync client: which queues exist, how many tasks each holds ready per
priority, delayed, in flight and dead, and how long its oldest ready task has waited.

Apart from client.py because these are read-only views of a queue (a pipeline of counts each), used by
admins, the operator's autoscaler and the API; reading many queues at once is queue_overview.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from jobqueue.broker.redis_io import translate_errors
from jobqueue.keys import GlobalKeys, QueueKeys, validate_queue_name
from jobqueue.settings import Settings


@dataclass(frozen=True)
class QueueDepth:
    """Live counts of one queue."""

    queue: str
    ready: dict[str, int]
    delayed: int
    in_flight: int
    dead: int

    @property
    def total_ready(self) -> int:
        """Tasks that could start now."""
        return sum(self.ready.values())


class QueueReads:
    """Mixed into Client: the registered queues and the live counts of one."""

    settings: Settings
    redis: redis.Redis
    global_keys: GlobalKeys

    def known_queues(self) -> list[str]:
        """Every queue a producer or worker has registered."""
        with translate_errors():
            return sorted(self.redis.smembers(self.global_keys.queues))

    def queue_depth(self, queue: str) -> QueueDepth:
        """Ready per priority, delayed, in-flight and dead counts in one round trip."""
        keys = QueueKeys(self.settings.key_prefix, validate_queue_name(queue))
        with translate_errors():
            pipe = self.redis.pipeline(transaction=False)
            for key in keys.ready_all:
                pipe.llen(key)
            pipe.zcard(keys.delayed)
            pipe.zcard(keys.leases)
            pipe.zcard(keys.dead)
            high, medium, low, delayed, leased, dead = pipe.execute()
        return QueueDepth(queue, {"high": high, "medium": medium, "low": low}, delayed, leased, dead)

    def oldest_ready_age(self, queue: str) -> float | None:
        """Seconds the oldest ready task (head of any priority list) has waited; None when none waits."""
        keys = QueueKeys(self.settings.key_prefix, validate_queue_name(queue))
        with translate_errors():
            pipe = self.redis.pipeline(transaction=False)
            for key in keys.ready_all:
                pipe.lindex(key, 0)
            pipe.execute_command("TIME")  # not pipe.time(): a cluster pipeline refuses that method
            *heads, (seconds, micros) = pipe.execute()
            ids = [h for h in heads if h]
            if not ids:
                return None
            pipe = self.redis.pipeline(transaction=False)
            for task_id in ids:
                pipe.hget(keys.task(task_id), "enqueued_at")
            stamps = [int(v) for v in pipe.execute() if v]
        if not stamps:
            return None
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return max(0.0, (now_ms - min(stamps)) / 1000)
