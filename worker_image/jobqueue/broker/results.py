"""Stored results of the sync client: whether a finished task's result is still kept, for how long, and
keeping it longer or deleting it now.

Apart from client.py because these act on a finished task's record only: none is a state transition (no
script), each is a plain read or TTL change of the task hash once its status is final.
"""

from __future__ import annotations

import redis

from jobqueue.broker.redis_io import translate_errors
from jobqueue.errors import InvalidTransition, TaskNotFound, ValidationError
from jobqueue.keys import keys_for_task
from jobqueue.models import TaskStatus
from jobqueue.settings import Settings


class ResultOperations:
    """Mixed into Client: the result a finished task keeps until its TTL ends."""

    settings: Settings
    redis: redis.Redis

    def _final_task_key(self, task_id: str) -> str:
        keys = keys_for_task(self.settings.key_prefix, task_id)
        key = keys.task(task_id)
        with translate_errors():
            status = self.redis.hget(key, "status")
        if status is None:
            raise TaskNotFound(task_id)
        if not TaskStatus(status).is_terminal:
            raise InvalidTransition(f"task {task_id} is {status}: it has no result yet")
        return key

    def result_exists(self, task_id: str) -> bool:
        """True while a finished task's result is stored."""
        try:
            self._final_task_key(task_id)
        except (TaskNotFound, InvalidTransition):
            return False
        return True

    def result_ttl(self, task_id: str) -> int | None:
        """Seconds until the result expires; None when it never expires (dead letters are kept)."""
        key = self._final_task_key(task_id)
        with translate_errors():
            ttl = int(self.redis.ttl(key))
        return None if ttl < 0 else ttl

    def extend_result(self, task_id: str, ttl_seconds: int) -> None:
        """Keep a finished task's result for ``ttl_seconds`` from now."""
        if not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
            raise ValidationError("ttl_seconds", "must be a whole number of seconds > 0")
        key = self._final_task_key(task_id)
        with translate_errors():
            self.redis.expire(key, ttl_seconds)

    def delete_result(self, task_id: str) -> None:
        """Delete a finished task's record and result now (dead letters: purge instead)."""
        key = self._final_task_key(task_id)
        keys = keys_for_task(self.settings.key_prefix, task_id)
        with translate_errors():
            if self.redis.zscore(keys.dead, task_id) is not None:
                raise InvalidTransition(f"task {task_id} is dead-lettered: replay or purge it")
            self.redis.delete(key)
