"""Helpers for the record tests: drive task transitions through the real Lua scripts, and drain the
event streams with a real recorder."""

from __future__ import annotations

from typing import Any

from psycopg_pool import ConnectionPool

from jobqueue import Client
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.leases import Job, Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.redis_io import run_script
from jobqueue.record.recorder import Recorder
from jobqueue.record.settings import RecordSettings
from jobqueue.retry import RetryPolicy


def fetch(client: Client, n: int = 10, queue: str = "default", worker: str = "w1") -> list[Job]:
    reply = run_script(client.redis, build_fetch(client.settings, queue, n, worker))
    return parse_fetch(queue, reply).jobs


def succeed(client: Client, job: Job, result_json: str = "null") -> int:
    outcome = Outcome(job.id, job.token, OutcomeKind.SUCCESS, result_json)
    return int(
        run_script(client.redis, build_completion(client.settings, job, outcome, None, worker_id="w1"))[0]
    )


def fail(client: Client, job: Job, error: str, retry: bool, traceback: str = "") -> int:
    outcome = Outcome(job.id, job.token, OutcomeKind.ERROR, error=error, traceback=traceback, retryable=retry)
    policy = RetryPolicy(backoff="constant", base_seconds=0.0, jitter=False) if retry else None
    return int(
        run_script(client.redis, build_completion(client.settings, job, outcome, policy, worker_id="w1"))[0]
    )


def make_recorder(client: Client, pool: ConnectionPool, **options: Any) -> Recorder:
    defaults: dict[str, Any] = {
        "block_ms": 50,
        "discover_interval_seconds": 0.01,
        "retry_initial_seconds": 0.05,
    }
    return Recorder(client.settings, RecordSettings(**{**defaults, **options}), client.redis, pool)


def recorded_up_to(pool: ConnectionPool, stream: str) -> str | None:
    """The stream's position committed in PostgreSQL (record_positions), None if it has none."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT entry_ms || '-' || entry_seq FROM record_positions WHERE stream = %s", (stream,)
        ).fetchone()
    return str(row[0]) if row else None


def last_entry(client: Client, stream: str) -> str:
    """The id of the stream's last entry."""
    [(entry_id, _)] = client.redis.xrevrange(stream, count=1)
    return str(entry_id)


def drain(recorder: Recorder, max_steps: int = 1000) -> int:
    """Run the recorder until a step finds nothing; returns the entries handled."""
    total = 0
    for _ in range(max_steps):
        handled = recorder.run_once(block=False)
        total += handled
        if not handled:
            return total
    raise AssertionError("recorder did not drain")


def add_event(client: Client, queue: str, task_id: str, event: str, ts_ms: int, /, **fields: Any) -> str:
    """Append one event exactly as the Lua scripts write it (for workloads with chosen times)."""
    stream = client.queue_keys(queue).events
    client.redis.sadd(client.global_keys.queues, queue)
    flat = {"id": task_id, "event": event, "ts": ts_ms, **fields}
    return str(client.redis.xadd(stream, flat))


def known_workload(client: Client, base_ms: int) -> dict[str, list[str]]:
    """A workload with chosen times and durations, written as the Lua scripts write it:

    - queue a, task 'work': 100 tasks that succeed with durations 1..100 ms;
    - queue a, task 'bad': 10 tasks that fail once (retried), then are dead-lettered after 1000 ms;
      half fail with "OSError: disk 100% full", half with "OSError: disk 1000 full";
    - queue b, task 'work': 20 tasks enqueued, 5 of them cancelled.
    All events fall within 30 minutes after base_ms.
    """
    from jobqueue.keys import new_task_id  # noqa: PLC0415

    ids: dict[str, list[str]] = {"work": [], "bad": [], "b": []}
    t = base_ms
    for i in range(1, 101):
        tid = new_task_id("a")
        ids["work"].append(tid)
        add_event(
            client,
            "a",
            tid,
            "enqueued",
            t,
            status="QUEUED",
            name="work",
            queue="a",
            priority="medium",
            args=f"[{i}]",
            kwargs="{}",
            max_retries=0,
            eta=0,
        )
        add_event(client, "a", tid, "started", t + 1, token=1, worker="w1")
        add_event(client, "a", tid, "succeeded", t + 1 + i, token=1, duration_ms=i, result=str(i))
        t += 200
    for i in range(10):
        tid = new_task_id("a")
        ids["bad"].append(tid)
        error = "OSError: disk 100% full" if i < 5 else "OSError: disk 1000 full"
        add_event(
            client,
            "a",
            tid,
            "enqueued",
            t,
            status="QUEUED",
            name="bad",
            queue="a",
            priority="low",
            args="[]",
            kwargs="{}",
            max_retries=1,
            eta=0,
        )
        add_event(client, "a", tid, "started", t + 1, token=1, worker="w2")
        add_event(
            client,
            "a",
            tid,
            "retrying",
            t + 6,
            token=1,
            error=error,
            backoff_ms=10,
            duration_ms=5,
            traceback="Traceback (most recent call last): ...",
        )
        add_event(client, "a", tid, "started", t + 20, token=2, worker="w2")
        add_event(
            client,
            "a",
            tid,
            "dead_lettered",
            t + 1020,
            token=2,
            status="FAILED",
            reason="max_retries_exceeded",
            error=error,
            duration_ms=1000,
            traceback="Traceback ...",
        )
        t += 2000
    for i in range(20):
        tid = new_task_id("b")
        ids["b"].append(tid)
        add_event(
            client,
            "b",
            tid,
            "enqueued",
            t,
            status="DELAYED",
            name="work",
            queue="b",
            priority="high",
            args="[]",
            kwargs="{}",
            max_retries=0,
            eta=t + 3_600_000,
        )
        if i < 5:
            add_event(client, "b", tid, "cancelled", t + 5, reason="user_requested")
        t += 100
    assert t - base_ms < 30 * 60 * 1000
    return ids
