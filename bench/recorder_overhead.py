"""What the recorder costs the hot path: enqueue and processing throughput without and with a
``jobqueue recorder`` process running, on one Redis and one PostgreSQL, in one run.

Starts its own Redis and PostgreSQL (embedded, free 127.0.0.1 ports, PostgreSQL with fsync on) and runs
rounds that alternate without / with the recorder (the machine may be shared: a single pair measures the
neighbours as much as the recorder, so medians of several alternating rounds are compared, with their
spread). Each round reuses the main benchmark's runner (``bench.runner``): a batch enqueue of ``--tasks``
no-op tasks, then a real ``jobqueue worker`` (the tuned setting) processing them all.

In a round with the recorder it also measures how far the recorder fell behind (events not yet recorded,
and the age of the oldest one), how long it took to catch up once the workload stopped, and then checks
the record: the set of stream entry ids equals the set in ``task_event_log`` (every event recorded,
none twice) and every task is in ``tasks`` as SUCCESS. A recorder that only falls behind is not free:
that is why lag and catch-up are part of the result.

The result opens with issue 21's four figures for the record, each against its target (``targets``):
recorder CPU per event (process CPU of the recorder / events it recorded, target <= 25 µs), its share
of Redis command time (INFO commandstats deltas of its commands while the hot path runs at its maximum
rate, <= 5%), the catch-up rate (the workload run with no recorder so the stream fills, then a recorder
started: events per second from its first commit to the last, >= 2x the hot path's maximum event rate)
and lag under sustained maximum load (the worst seconds-behind in the second half of the workload is no
worse than in the first: bounded, not growing).

    python -m bench.recorder_overhead [--tasks 20000] [--rounds 3] [--record niceness=10] [--json out.json]

The four figures are written into docs/benchmarks.md between the ``bench:record`` markers unless
``--no-docs``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis

from bench import headlines
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
from bench.report import markdown, measured_with, replace_results
from bench.runner import REPO_ROOT, Runner
from bench.summary import directory_for, publish
from jobqueue.embedded.postgres_server import PostgresServer
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.keys import GlobalKeys, QueueKeys
from jobqueue.record.migrate import migrate
from jobqueue.record.ownership import STREAM_LOCKS
from jobqueue.record.settings import RecordSettings

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


def verdicts(summary: dict[str, Any], catch_up: Sequence[CatchUp], rounds: Sequence[Round]) -> dict[str, Any]:
    """Issue 21's four figures for the record, each against its target."""
    recorded = [r for r in rounds if r.recorder]
    events_per_task = 3.0  # enqueued, started, succeeded: one event each per no-op task
    plain = [r.process_per_second for r in rounds if not r.recorder and r.process_per_second]
    hot_events = statistics.median(plain) * events_per_task if plain else 0.0
    cpu_us = summary["recorder"]["cpu_ms_per_1000_events"]
    share = statistics.median(r.redis_share_percent for r in recorded) if recorded else None
    rate = statistics.median(c.events_per_second for c in catch_up) if catch_up else None
    halves = [r.detail.get("lag_halves_seconds") for r in recorded]
    bounded = all(h and h[1] <= max(2 * h[0], 1.0) for h in halves)
    cpu_met = cpu_us is not None and cpu_us <= 25
    share_met = share is not None and share <= 5
    rate_met = bool(rate and hot_events and rate >= 2 * hot_events)
    return {
        "hot_path_max_events_per_second": round(hot_events),
        "recorder_cpu_us_per_event": {"measured": cpu_us, "target": "<= 25", "met": cpu_met},
        "recorder_share_of_redis_percent": {"measured": share, "target": "<= 5", "met": share_met},
        "catch_up_events_per_second": {
            "measured": rate, "x_hot_path_max": round(rate / hot_events, 2) if rate and hot_events else None,
            "target": ">= 2x the hot path's maximum rate", "met": rate_met,
            "recorder_cpu_us_per_event": [c.recorder_cpu_us_per_event for c in catch_up],
        },
        "lag_under_sustained_max_load": {
            "max_behind_seconds_first_half_second_half": halves,
            "target": "not growing: second half <= max(2x first half, 1 s)", "met": bounded,
        },
    }  # fmt: skip


DOCS_MARKERS = ("<!-- bench:record:start -->", "<!-- bench:record:end -->")


def docs_section(result: dict[str, Any], command: str) -> str:
    """The generated record part of docs/benchmarks.md: the four figures against their targets."""
    t = result["targets"]
    load = ", ".join(f"{x:.1f}" for x in result["load_average_after"])
    yes = {True: "yes", False: "no"}
    cpu, share = t["recorder_cpu_us_per_event"], t["recorder_share_of_redis_percent"]
    rate, lag = t["catch_up_events_per_second"], t["lag_under_sustained_max_load"]
    halves = "; ".join(f"{a:.1f} / {b:.1f}" for a, b in lag["max_behind_seconds_first_half_second_half"])
    rows = [
        ["figure", "measured", "target", "met"],
        ["recorder CPU per event (live rounds)", f"{cpu['measured']} µs", "≤ 25 µs", yes[cpu["met"]]],
        ["recorder's share of Redis command time", f"{share['measured']}%", "≤ 5%", yes[share["met"]]],
        ["catch-up from a pre-filled stream", f"{rate['measured']:,} events/s = {rate['x_hot_path_max']}x "
         f"the hot path's {t['hot_path_max_events_per_second']:,}", "≥ 2x", yes[rate["met"]]],
        ["lag, worst seconds behind, first / second half of each round", halves, "not growing",
         yes[lag["met"]]],
    ]  # fmt: skip
    return (
        measured_with(command) + f" "
        f"({result['tasks_per_round']:,} tasks per round, {result['rounds']} rounds of each kind; "
        f"load average after: {load}).\n\n" + markdown(rows)
    )


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max, and half the min-max range as % of the median."""
    med = statistics.median(values)
    return {
        "median": round(med),
        "min": round(min(values)),
        "max": round(max(values)),
        "spread_percent": round((max(values) - min(values)) / 2 / med * 100, 1) if med else None,
        "runs": [round(v) for v in values],
    }


def summarize(rounds: Sequence[Round]) -> dict[str, Any]:
    """Medians without / with, their change in %, and the recorder's lag, catch-up and CPU."""
    plain = [r for r in rounds if not r.recorder]
    recorded = [r for r in rounds if r.recorder]
    out: dict[str, Any] = {}
    for metric in ("enqueue_per_second", "process_per_second"):
        a = [getattr(r, metric) for r in plain if getattr(r, metric)]
        b = [getattr(r, metric) for r in recorded if getattr(r, metric)]
        if a and b:
            change = (statistics.median(b) - statistics.median(a)) / statistics.median(a) * 100
            out[metric] = {"without": spread(a), "with": spread(b), "median_change_percent": round(change, 1)}
    events = sum(r.events for r in recorded)
    tasks = sum(r.events for r in recorded) / 3 or 1  # three events per task
    hot_with = sum(r.hot_path_cpu_seconds for r in recorded)
    record_cpu = sum(r.recorder_cpu_seconds + r.postgres_cpu_seconds for r in recorded)
    out["cpu_ms_per_1000_tasks"] = {
        "hot_path_without_recorder": round(
            statistics.median([r.hot_path_cpu_seconds for r in plain]) * 1e6 / (tasks / len(recorded)), 1
        ) if plain and recorded else None,
        "hot_path_with_recorder": round(hot_with * 1e6 / tasks, 1),
        "recorder_process": round(sum(r.recorder_cpu_seconds for r in recorded) * 1e6 / tasks, 1),
        "postgres": round(sum(r.postgres_cpu_seconds for r in recorded) * 1e6 / tasks, 1),
        "record_share_of_all_cpu_percent": round(record_cpu / (record_cpu + hot_with) * 100, 1)
        if hot_with
        else None,
    }  # fmt: skip
    out["recorder"] = {
        "max_backlog_events": [r.max_backlog_events for r in recorded],
        "max_behind_seconds": [r.max_behind_seconds for r in recorded],
        "backlog_when_workload_ended": [r.backlog_at_end for r in recorded],
        "catch_up_seconds": [r.catch_up_seconds for r in recorded],
        "share_of_redis_command_time_percent": [r.redis_share_percent for r in recorded],
        "cpu_ms_per_1000_events": round(sum(r.recorder_cpu_seconds for r in recorded) * 1e6 / events, 1)
        if events
        else None,
        "every_event_recorded_once": all(r.recorded_once for r in recorded),
    }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.recorder_overhead``; exit 1 if the record was incomplete."""
    parser = argparse.ArgumentParser(prog="python -m bench.recorder_overhead", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind, alternating")
    parser.add_argument(
        "--record", action="append", default=[], metavar="NAME=VALUE",
        help="a recorder setting, e.g. niceness=10 or linger_ms=500 (JOBQUEUE_RECORD_<NAME>); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--postgres-niceness", type=int, default=0, metavar="N",
        help="renice the PostgreSQL server (and so every backend it forks) by N: on a single machine, "
        "with --record niceness=N, the whole record then yields the CPU to the hot path",
    )  # fmt: skip
    parser.add_argument(
        "--postgres-no-fsync", action="store_true",
        help="diagnostic only (never a production setting): PostgreSQL without fsync, to tell the "
        "record's disk flushes apart from its CPU",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--summary-dir", type=Path, default=None, help="default: beside --docs")
    args = parser.parse_args(argv)
    record_env = {}
    for item in args.record:
        name, _, value = item.partition("=")
        record_env[f"JOBQUEUE_RECORD_{name.upper()}"] = value
    RecordSettings.model_validate(
        {k.removeprefix("JOBQUEUE_RECORD_").lower(): v for k, v in record_env.items()}
    )

    base = Path(tempfile.mkdtemp(prefix="jobqueue-recorder-overhead-"))
    os.chmod(base, 0o755)  # PostgreSQL runs as another user when we are root
    redis_server = RedisServer(base / "redis").start()
    pg = PostgresServer(base / "pg", durable=not args.postgres_no_fsync).start()
    rounds: list[Round] = []
    catch_up: list[CatchUp] = []
    try:
        database_url = pg.create_database("bench")
        migrate(database_url)
        runner = Runner(redis_server.url, base, {"main": Path(sys.executable).parent}, args.tasks)
        assert pg.process is not None
        if args.postgres_niceness:
            # Backends are forked by the postmaster and inherit its niceness (root may renice it).
            os.setpriority(os.PRIO_PROCESS, pg.process.pid, args.postgres_niceness)
        servers = Servers(database_url, pg.process.pid)
        run_round(runner, 0, False, servers, record_env, base)  # warm-up (caches, scripts): not kept
        for rep in range(1, args.rounds + 1):
            # Alternate which kind goes first, so a drift in the neighbours' load favours neither.
            order = (False, True) if rep % 2 else (True, False)
            for with_recorder in order:
                r = run_round(runner, rep, with_recorder, servers, record_env, base)
                rounds.append(r)
                print(json.dumps({"round": rep, **asdict(r)}), file=sys.stderr, flush=True)
        # The catch-up rate needs a backlog the recorder did not see grow: pre-filled with it off.
        catch_up = [
            catch_up_round(runner, servers, record_env, base) for _ in range(max(1, args.rounds // 2))
        ]
        for c in catch_up:
            print(json.dumps({"catch_up": asdict(c)}), file=sys.stderr, flush=True)
        summary = summarize(rounds)
        result = {
            "targets": verdicts(summary, catch_up, rounds),
            "tasks_per_round": args.tasks,
            "rounds": args.rounds,
            "recorder_settings": record_env or "defaults",
            "postgres_niceness": args.postgres_niceness,
            "postgres_fsync": not args.postgres_no_fsync,
            "load_average_after": os.getloadavg(),
            **summary,
        }
        print(json.dumps(result, indent=2))
        if not args.no_docs:
            command = "python -m bench.recorder_overhead " + " ".join(
                argv if argv is not None else sys.argv[1:]
            )
            current = args.docs.read_text() if args.docs.exists() else ""
            section = docs_section(result, command)
            args.docs.write_text(replace_results(current, section, DOCS_MARKERS))
            load = "after: " + ", ".join(f"{x:.1f}" for x in result["load_average_after"])
            figures = headlines.recorder_overhead(result["targets"])
            where = directory_for(args.docs, args.summary_dir)
            publish("recorder_overhead", "bench.recorder_overhead", argv, load, figures, where)
        if args.json:
            args.json.write_text(json.dumps({**result, "raw": [asdict(r) for r in rounds]}, indent=2))
    finally:
        pg.stop()
        redis_server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return (
        0
        if all(r.recorded_once for r in rounds if r.recorder) and all(c.recorded_once for c in catch_up)
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
