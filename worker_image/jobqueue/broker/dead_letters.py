"""Dead letter queue operations of the sync client: list, stats, alert, replay, purge; and the typed
wrappers of the two scripts they run (``lua/replay.lua``, ``lua/purge_dead.lua``)."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from jobqueue.broker.redis_io import run_script, translate_errors
from jobqueue.broker.scripts import ScriptCall
from jobqueue.broker.task_read import TASK_FIELDS, parse_task
from jobqueue.errors import InvalidTransition, TaskNotFound, ValidationError
from jobqueue.keys import QueueKeys, keys_for_task, validate_queue_name
from jobqueue.models import Priority, TaskRecord
from jobqueue.settings import Settings


@dataclass(frozen=True)
class DeadLetterStats:
    """Size of a queue's dead letter queue and its breakdown by task name and reason."""

    queue: str
    total: int
    by_task: dict[str, int]
    by_reason: dict[str, int]


def build_replay(settings: Settings, task_id: str, priority: Priority, reset_retries: bool) -> ScriptCall:
    """The replay script call for a dead-lettered task."""
    keys = QueueKeys(settings.key_prefix, task_id.rpartition(".")[0])
    return ScriptCall(
        "replay",
        (keys.task(task_id), keys.dead, keys.ready(priority), keys.wake, keys.events),
        (task_id, "1" if reset_retries else "0", settings.events_max_length),
    )


def build_purge_dead(settings: Settings, queue: str, batch: int = 500) -> ScriptCall:
    """One batch of the dead letter purge."""
    keys = QueueKeys(settings.key_prefix, queue)
    return ScriptCall(
        "purge_dead", (keys.dead, keys.events), (keys.task_prefix, batch, settings.events_max_length)
    )


class DeadLetterOperations:
    """Mixed into Client: everything about a queue's dead letters."""

    settings: Settings
    redis: redis.Redis

    def queue_keys(self, queue: str) -> QueueKeys:
        """Keys of one queue."""
        return QueueKeys(self.settings.key_prefix, validate_queue_name(queue))

    def list_dead_letters(self, queue: str, offset: int = 0, limit: int = 50) -> list[TaskRecord]:
        """Dead-lettered tasks of a queue, newest first, paged."""
        if offset < 0 or not 1 <= limit <= 1000:
            raise ValidationError("limit", "offset must be >= 0 and limit between 1 and 1000")
        keys = self.queue_keys(queue)
        with translate_errors():
            ids = self.redis.zrevrange(keys.dead, offset, offset + limit - 1)
            pipe = self.redis.pipeline(transaction=False)
            for task_id in ids:
                pipe.hmget(keys.task(task_id), TASK_FIELDS)
            rows = pipe.execute()
        records = [parse_task(task_id, row) for task_id, row in zip(ids, rows, strict=True)]
        return [r for r in records if r is not None]

    def dead_letter_stats(self, queue: str, page: int = 1000) -> DeadLetterStats:
        """Counts of a queue's dead letters by task name and by reason (pages through the whole DLQ)."""
        keys = self.queue_keys(queue)
        by_task: dict[str, int] = {}
        by_reason: dict[str, int] = {}
        total = 0
        start = 0
        with translate_errors():
            while True:
                ids = self.redis.zrange(keys.dead, start, start + page - 1)
                if not ids:
                    break
                pipe = self.redis.pipeline(transaction=False)
                for task_id in ids:
                    pipe.hmget(keys.task(task_id), ["name", "dead_letter_reason"])
                for name, reason in pipe.execute():
                    total += 1
                    by_task[name or "?"] = by_task.get(name or "?", 0) + 1
                    by_reason[reason or "?"] = by_reason.get(reason or "?", 0) + 1
                start += page
        return DeadLetterStats(queue, total, by_task, by_reason)

    def dead_letter_alert(self, queue: str, threshold: int) -> bool:
        """True when the queue holds at least ``threshold`` dead letters."""
        with translate_errors():
            return int(self.redis.zcard(self.queue_keys(queue).dead)) >= threshold

    def replay_dead_letter(self, task_id: str, reset_retries: bool = False) -> None:
        """Put a dead-lettered task back in its queue (optionally with its retry counters reset)."""
        keys = keys_for_task(self.settings.key_prefix, task_id)
        with translate_errors():
            priority = self.redis.hget(keys.task(task_id), "priority")
        if priority is None:
            raise TaskNotFound(task_id)
        if not run_script(
            self.redis, build_replay(self.settings, task_id, Priority(priority), reset_retries)
        ):
            raise InvalidTransition(f"task {task_id} is not in the dead letter queue")

    def purge_dead_letters(self, queue: str) -> int:
        """Delete every dead letter of a queue, in batches; returns how many were purged."""
        validate_queue_name(queue)
        total = 0
        while True:
            n = int(run_script(self.redis, build_purge_dead(self.settings, queue)))
            total += n
            if n == 0:
                return total
