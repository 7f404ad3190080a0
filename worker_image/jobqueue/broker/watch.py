"""The typed wrapper of ``lua/watch.lua``, shared by the sync and the asyncio client's ``wait``.

A waiter subscribes to the task's completion channel first and calls watch second: the script marks the
task as awaited (so its final transition publishes) and returns its status, so a completion between the
two steps is never missed.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from jobqueue.broker.redis_io import run_script, run_script_async
from jobqueue.broker.scripts import ScriptCall
from jobqueue.keys import keys_for_task
from jobqueue.models import TaskStatus
from jobqueue.settings import Settings


def build_watch(settings: Settings, task_id: str) -> ScriptCall:
    """The watch call for one task (KEYS[1]: its hash)."""
    keys = keys_for_task(settings.key_prefix, task_id)
    return ScriptCall("watch", (keys.task(task_id),), ())


def _status(reply: str | None) -> TaskStatus | None:
    return None if reply is None else TaskStatus(reply)


def watch(conn: redis.Redis, settings: Settings, task_id: str) -> TaskStatus | None:
    """Mark the task as awaited; its status, or None when no such task exists (nothing is written)."""
    return _status(run_script(conn, build_watch(settings, task_id)))


async def watch_async(conn: aioredis.Redis, settings: Settings, task_id: str) -> TaskStatus | None:
    """``watch`` for asyncio callers."""
    return _status(await run_script_async(conn, build_watch(settings, task_id)))
