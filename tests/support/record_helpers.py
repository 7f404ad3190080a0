"""Helpers for the record tests: drive task transitions through the real Lua scripts, and drain the
event streams with a real recorder."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from jobqueue import Client
from jobqueue.record.recorder import Recorder
from jobqueue.record.settings import RecordSettings
from jobqueue.redis_io import run_script
from jobqueue.retry import RetryPolicy
from jobqueue.worker.jobs import Job, Outcome, OutcomeKind, build_completion, build_fetch, parse_fetch


def fetch(client: Client, n: int = 10, queue: str = "default", worker: str = "w1") -> list[Job]:
    reply = run_script(client.redis, build_fetch(client.settings, queue, n, worker))
    return parse_fetch(queue, reply).jobs


def succeed(client: Client, job: Job, result_json: str = "null") -> int:
    outcome = Outcome(job.id, job.token, OutcomeKind.SUCCESS, result_json)
    return int(run_script(client.redis, build_completion(client.settings, job, outcome, None)))


def fail(client: Client, job: Job, error: str, retry: bool, traceback: str = "") -> int:
    outcome = Outcome(job.id, job.token, OutcomeKind.ERROR, error=error, traceback=traceback, retryable=retry)
    policy = RetryPolicy(backoff="constant", base_seconds=0.0, jitter=False) if retry else None
    return int(run_script(client.redis, build_completion(client.settings, job, outcome, policy)))


def make_recorder(client: Client, pool: ConnectionPool, **options: Any) -> Recorder:
    defaults: dict[str, Any] = {
        "block_ms": 50,
        "discover_interval_seconds": 0.01,
        "retry_initial_seconds": 0.05,
    }
    return Recorder(client.settings, RecordSettings(**{**defaults, **options}), client.redis, pool)


def drain(recorder: Recorder, max_steps: int = 1000) -> int:
    """Run the recorder until a step finds nothing; returns the entries handled."""
    total = 0
    for _ in range(max_steps):
        handled = recorder.run_once(block=False)
        total += handled
        if not handled:
            return total
    raise AssertionError("recorder did not drain")


def add_event(client: Client, queue: str, task_id: str, event: str, ts_ms: int, **fields: Any) -> str:
    """Append one event exactly as the Lua scripts write it (for workloads with chosen times)."""
    stream = client.queue_keys(queue).events
    client.redis.sadd(client.global_keys.queues, queue)
    flat = {"id": task_id, "event": event, "ts": ts_ms, **fields}
    return str(client.redis.xadd(stream, flat))
