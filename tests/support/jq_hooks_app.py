"""An app with every hook registered twice: first one that raises, then one that records the call in
Redis (``<prefix>:test:hooks``, entries ``kind|pid|detail``), so a test sees that a raising hook neither
stops the next one nor changes anything else. Workers import it with --app jq_hooks_app:app."""

from __future__ import annotations

import os
import sys
from functools import cache

import redis

from jobqueue import App, DeadLetterNotice, TaskContext, TaskOutcome

app = App()


@cache
def _redis() -> redis.Redis:
    # Per process (cache is per interpreter): the pool's children each open their own connection.
    return redis.Redis.from_url(app.settings.redis_url.get_secret_value(), decode_responses=True)


def _record(kind: str, detail: str = "") -> None:
    _redis().rpush(f"{app.settings.key_prefix}:test:hooks", f"{kind}|{os.getpid()}|{detail}")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def explode(message: str) -> None:
    raise ValueError(message)


@app.on_worker_start
def broken_start() -> None:
    raise RuntimeError("start hook broke")


@app.on_worker_start
def started() -> None:
    _record("start")


@app.on_worker_stop
def broken_stop() -> None:
    sys.exit(3)  # not even SystemExit from a hook ends the process


@app.on_worker_stop
def stopped() -> None:
    _record("stop")


@app.before_task
def broken_before(ctx: TaskContext) -> None:
    raise RuntimeError("before hook broke \ud800\x00")  # hostile text in the logged error


@app.before_task
def before(ctx: TaskContext) -> None:
    _record("before", f"{ctx.id}|{ctx.name}|{ctx.attempt}")


@app.after_task
def broken_after(ctx: TaskContext, outcome: TaskOutcome) -> None:
    raise RuntimeError("after hook broke")


@app.after_task
def after(ctx: TaskContext, outcome: TaskOutcome) -> None:
    _record("after", f"{ctx.id}|{outcome.status}|{outcome.error}")


@app.on_failure
def broken_failure(ctx: TaskContext, exc: BaseException) -> None:
    raise RuntimeError("failure hook broke")


@app.on_failure
def failed(ctx: TaskContext, exc: BaseException) -> None:
    _record("failure", f"{ctx.id}|{type(exc).__name__}|{exc}")


@app.on_dead_letter
def broken_dead_letter(notice: DeadLetterNotice) -> None:
    raise RuntimeError("dead-letter hook broke")


@app.on_dead_letter
def dead_lettered(notice: DeadLetterNotice) -> None:
    _record("dead", f"{notice.task_id}|{notice.status}|{notice.error}")
