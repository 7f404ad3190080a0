"""Writing a running task's progress (lua/progress.lua): one fenced HSET, no event."""

from __future__ import annotations

import json
from typing import Any

import redis

from jobqueue.broker.redis_io import run_script
from jobqueue.broker.scripts import ScriptCall
from jobqueue.keys import keys_for_task
from jobqueue.settings import Settings


def build_progress(settings: Settings, task_id: str, token: int, value: dict[str, Any]) -> ScriptCall:
    """The progress call of attempt ``token`` of a task; ``value`` is jobqueue.progress's (validated)
    value with its time, so it is plain JSON every store accepts."""
    keys = keys_for_task(settings.key_prefix, task_id)
    encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return ScriptCall("progress", (keys.task(task_id),), (token, encoded))


def write_progress(
    conn: redis.Redis, settings: Settings, task_id: str, token: int, value: dict[str, Any]
) -> bool:
    """Store the progress; False when the attempt no longer holds the task (nothing written).
    BrokerUnavailable when Redis cannot be reached."""
    return bool(run_script(conn, build_progress(settings, task_id, token, value)))
