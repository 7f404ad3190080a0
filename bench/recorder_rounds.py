"""The rounds of bench.recorder_overhead: a workload run with or without a real ``jobqueue recorder``
process beside it (the main benchmark's runner, ``bench.runner``, enqueues and processes), metered on the
way (CPU of each process, Redis command time, how far the recorder falls behind), then the record checked
against the stream; and the catch-up round, a recorder started on a stream already full.

What the rounds add up to is bench/recorder_verdict.py; the entry point is bench/recorder_overhead.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench.adapters import ADAPTERS
from bench.recorder_meter import (
    LagProbe,
    backlog,
    children_cpu_seconds,
    entry_key,
    lag_halves,
    process_cpu_seconds,
    recorder_share_of_redis,
    redis_usec_by_command,
    server_cpu_seconds,
)
from bench.redis_stats import snapshot
from bench.runner import REPO_ROOT, Runner
from jobqueue.keys import GlobalKeys, QueueKeys
from jobqueue.record.ownership import STREAM_LOCKS

QUEUE = "bench"  # bench.tasks.jobqueue_tasks.QUEUE
PREFIX = "jq"  # the benchmark app runs with the default key prefix
CATCH_UP_TIMEOUT = 300.0


@dataclass
class Round:
    """One round: throughput figures, and for a round with the recorder what it cost and how it kept up."""

    recorder: bool
    enqueue_per_second: float
    process_per_second: float | None
    events: int = 0
    max_backlog_events: int = 0  # read from Redis but not yet committed, or not read yet
    max_behind_seconds: float = 0.0  # age of the oldest event not yet recorded
    backlog_at_end: int = 0  # when the last task had run
    catch_up_seconds: float = 0.0  # from then until everything was recorded
    recorder_cpu_seconds: float = 0.0
    # CPU of the hot path (enqueue driver + worker + Redis) and of the record (recorder + PostgreSQL):
    # unlike throughput, CPU per task barely moves with the neighbours' load.
    hot_path_cpu_seconds: float = 0.0
    postgres_cpu_seconds: float = 0.0
    redis_share_percent: float = 0.0  # of Redis command time spent on the recorder's commands
    recorded_once: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Servers:
    """What a round needs to reach and to meter the two servers."""

    database_url: str
    postgres_pid: int


def start_recorder(
    redis_url: str, database_url: str, record_env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """A real ``jobqueue recorder`` process with its default settings but ``record_env``."""
    env = {
        **os.environ,
        "JOBQUEUE_REDIS_URL": redis_url,
        "JOBQUEUE_KEY_PREFIX": PREFIX,
        "JOBQUEUE_DATABASE_URL": database_url,
        # Find the bench queue at once rather than within the default 5 s.
        "JOBQUEUE_RECORD_DISCOVER_INTERVAL_SECONDS": "0.2",
        **record_env,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobqueue", "--log-level", "WARNING", "recorder"],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def verify_record(conn: redis.Redis, database_url: str, stream: str, tasks: int) -> dict[str, Any]:
    """Every stream entry recorded exactly once, and every task recorded as succeeded."""
    in_stream = {entry_key(entry_id) for entry_id, _ in conn.xrange(stream)}
    with psycopg.connect(database_url) as pg:
        rows = pg.execute(
            "SELECT entry_ms, entry_seq FROM task_event_log WHERE stream = %s", (stream,)
        ).fetchall()
        [succeeded] = pg.execute("SELECT count(*) FROM tasks WHERE status = 'SUCCESS'").fetchone() or [0]
    recorded = {(int(ms), int(seq)) for ms, seq in rows}
    return {
        "stream_entries": len(in_stream),
        "recorded_rows": len(rows),
        "missing": len(in_stream - recorded),
        "extra": len(recorded - in_stream),
        "tasks_succeeded": int(succeeded),
        "ok": in_stream == recorded and len(rows) == len(recorded) and succeeded == tasks,
    }


def reset_record(database_url: str) -> None:
    """Empty the record between rounds, so each round is verified on its own."""
    with psycopg.connect(database_url) as pg:
        pg.execute("TRUNCATE task_events, tasks, dead_letters, workers, schedule_runs, record_positions")


def run_round(
    runner: Runner, rep: int, with_recorder: bool, servers: Servers, record_env: dict[str, str], out: Path
) -> Round:
    """Flush, (start a recorder,) enqueue, process, (wait for the recorder to catch up, verify)."""
    adapter = ADAPTERS["jobqueue"]
    runner.flush()
    reset_record(servers.database_url)
    stream = QueueKeys(PREFIX, QUEUE).events
    positions = GlobalKeys(PREFIX).record_positions
    children, redis_cpu = children_cpu_seconds(), snapshot(runner.redis).cpu_seconds
    if not with_recorder:
        enqueue = runner.enqueue(adapter, rep, "batch")
        process = runner.process(adapter, rep, "tuned")
        hot = children_cpu_seconds() - children + snapshot(runner.redis).cpu_seconds - redis_cpu
        return Round(
            False, enqueue.value or 0.0, process.value, hot_path_cpu_seconds=round(hot, 2),
            detail={"process_ok": process.ok},
        )  # fmt: skip
    conn = redis.Redis.from_url(runner.redis_url, decode_responses=True)
    recorder = start_recorder(
        runner.redis_url, servers.database_url, record_env, out / f"recorder-r{rep}.log"
    )
    try:
        time.sleep(1.0)  # start-up (imports, pool) is not what is measured
        cpu_at_start = process_cpu_seconds(recorder.pid)
        pg_cpu = server_cpu_seconds(servers.postgres_pid)
        children, redis_cpu = children_cpu_seconds(), snapshot(runner.redis).cpu_seconds
        usec = redis_usec_by_command(runner.redis)
        with LagProbe(runner.redis_url, stream, positions) as probe:
            load_start = time.perf_counter()
            enqueue = runner.enqueue(adapter, rep, "batch")
            process = runner.process(adapter, rep, "tuned")
            load_end = time.perf_counter()
            at_end, _ = backlog(conn, stream, positions)
            started = time.perf_counter()
            while backlog(conn, stream, positions)[0] and time.perf_counter() - started < CATCH_UP_TIMEOUT:
                time.sleep(0.02)
            catch_up = time.perf_counter() - started
        cpu = process_cpu_seconds(recorder.pid) - cpu_at_start
        hot = children_cpu_seconds() - children + snapshot(runner.redis).cpu_seconds - redis_cpu
        pg_cpu = server_cpu_seconds(servers.postgres_pid) - pg_cpu
        redis_share = recorder_share_of_redis(usec, redis_usec_by_command(runner.redis))
    finally:
        recorder.terminate()
        recorder.wait(30)
    check = verify_record(conn, servers.database_url, stream, runner.tasks)
    conn.close()
    return Round(
        True, enqueue.value or 0.0, process.value, events=check["stream_entries"],
        max_backlog_events=probe.max_events, max_behind_seconds=round(probe.max_seconds, 3),
        backlog_at_end=at_end, catch_up_seconds=round(catch_up, 3), recorder_cpu_seconds=round(cpu, 2),
        hot_path_cpu_seconds=round(hot, 2), postgres_cpu_seconds=round(pg_cpu, 2),
        recorded_once=check["ok"], redis_share_percent=redis_share,
        detail={"process_ok": process.ok, "check": check,
                "lag_halves_seconds": lag_halves(probe.samples, load_start, load_end)},
    )  # fmt: skip


@dataclass
class CatchUp:
    """A pre-filled backlog drained by a recorder started after the workload: its rate and its CPU."""

    events: int
    seconds: float
    events_per_second: float
    recorder_cpu_us_per_event: float
    recorded_once: bool


def catch_up_round(runner: Runner, servers: Servers, record_env: dict[str, str], out: Path) -> CatchUp:
    """The workload with no recorder (the streams fill, as during a recorder or PostgreSQL outage), then
    a recorder started: events recorded per second."""
    adapter = ADAPTERS["jobqueue"]
    runner.flush()
    reset_record(servers.database_url)
    stream = QueueKeys(PREFIX, QUEUE).events
    positions = GlobalKeys(PREFIX).record_positions
    runner.enqueue(adapter, 0, "batch")
    runner.process(adapter, 0, "tuned")
    conn = redis.Redis.from_url(runner.redis_url, decode_responses=True)
    total = int(conn.xlen(stream))
    locks = psycopg.connect(servers.database_url, autocommit=True)  # polled: connected once, before
    recorder = start_recorder(
        runner.redis_url, servers.database_url, record_env, out / "recorder-catch-up.log"
    )
    try:
        # From the moment it took the stream (its advisory lock, right before its first read) to the
        # last commit: its start-up (imports, pool) is not the catch-up rate.
        started: tuple[float, float] | None = None
        deadline = time.perf_counter() + CATCH_UP_TIMEOUT
        while time.perf_counter() < deadline:
            if started is None and _owns_a_stream(locks):
                started = (time.perf_counter(), process_cpu_seconds(recorder.pid))
            if started is not None and backlog(conn, stream, positions)[0] == 0:
                break
            time.sleep(0.005)
        end, cpu_end = time.perf_counter(), process_cpu_seconds(recorder.pid)
    finally:
        recorder.terminate()
        recorder.wait(30)
        locks.close()
    check = verify_record(conn, servers.database_url, stream, runner.tasks)
    conn.close()
    if started is None:
        raise SystemExit("the recorder did not start within the catch-up timeout")
    seconds = max(end - started[0], 1e-6)
    cpu_per_event = (cpu_end - started[1]) * 1e6 / max(total, 1)
    events = total
    return CatchUp(events, round(seconds, 3), round(events / seconds), round(cpu_per_event, 1), check["ok"])


def _owns_a_stream(pg: psycopg.Connection[Any]) -> bool:
    return bool(
        pg.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %s::int4::oid",
            (STREAM_LOCKS,),
        ).fetchone()
    )
