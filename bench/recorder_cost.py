"""CPU the record costs per 1,000 tasks, measured without the noise of a live workload.

Fills a queue's event stream with real transitions in the shape of ``bench.recorder_overhead`` (a batch
enqueue of every task, then fetch + ack in small groups, three events per task), then lets one in-process
:class:`Recorder` drain it in batches of ``--batch`` entries, and meters the recorder thread's own CPU
(``time.thread_time``) and the CPU of every PostgreSQL process (/proc). Repeated ``--reps`` times on an
emptied record; medians are printed. CPU per task, unlike throughput, barely moves with the neighbours'
load, so this is the measure to compare code changes with.

``--drop-index NAME`` (repeatable) drops an index from the bench database first, to price it. The
garbage collector is tuned as in a ``jobqueue recorder`` process (``--no-gc-tuning`` prices that).

    python -m bench.recorder_cost [--tasks 20000] [--batch 600] [--reps 3] [--drop-index task_events_ts]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
from pydantic import SecretStr

from bench.recorder_meter import server_cpu_seconds
from jobqueue import Client, Settings
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.redis_io import load_all_scripts, run_script, run_scripts
from jobqueue.embedded.postgres_server import PostgresServer
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.record.db import open_pool
from jobqueue.record.migrate import migrate
from jobqueue.record.recorder import Recorder, tune_garbage_collector
from jobqueue.record.settings import RecordSettings


def produce(client: Client, tasks: int, fetch_batch: int) -> None:
    """Enqueue every task (batches of 500), then run them all (fetch + ack, ``fetch_batch`` at a time)."""
    for start in range(0, tasks, 500):
        client.enqueue_many([make_request("bench", [i]) for i in range(min(500, tasks - start))])
    done = 0
    while done < tasks:
        reply = run_script(client.redis, build_fetch(client.settings, "default", fetch_batch, "bench-w"))
        jobs = parse_fetch("default", reply).jobs
        run_scripts(
            client.redis,
            [
                build_completion(
                    client.settings,
                    j,
                    Outcome(j.id, j.token, OutcomeKind.SUCCESS, "1"),
                    None,
                    worker_id="bench-w",
                )
                for j in jobs
            ],
        )
        done += len(jobs)


def one_rep(
    settings: Settings, database_url: str, pg_pid: int, tasks: int, batch: int, fetch: int
) -> dict[str, float]:
    client = Client(settings)  # a fresh client: it caches which queues it registered
    client.redis.flushdb()
    load_all_scripts(client.redis)
    with psycopg.connect(database_url) as pg:
        pg.execute("TRUNCATE task_events, tasks, dead_letters, workers, schedule_runs")
        pg.execute("CHECKPOINT")
    produce(client, tasks, fetch)
    events = int(client.redis.xlen(client.queue_keys("default").events))
    # A fixed batch size (max_batch_size: no doubling while behind), so runs compare like with like.
    options = RecordSettings(
        batch_size=batch, max_batch_size=batch, block_ms=100, discover_interval_seconds=3600
    )
    pool = open_pool(database_url, 1, 1)
    recorder = Recorder(client.settings, options, Client(client.settings).redis, pool, consumer="cost")
    recorder.run_once(block=False)  # discovery, first connection (not metered)
    pg_before, cpu_before, wall = server_cpu_seconds(pg_pid), time.thread_time(), time.perf_counter()
    while recorder.run_once(block=False):
        pass
    cpu = time.thread_time() - cpu_before
    wall = time.perf_counter() - wall
    time.sleep(0.2)  # let the backend finish accounting (its CPU is read from /proc)
    pg_cpu = server_cpu_seconds(pg_pid) - pg_before
    pool.close()
    with psycopg.connect(database_url) as pg:
        [n_events] = pg.execute("SELECT count(*) FROM task_event_log").fetchone() or [0]
        [n_ok] = pg.execute("SELECT count(*) FROM tasks WHERE status = 'SUCCESS'").fetchone() or [0]
    assert n_events == events and n_ok == tasks, (n_events, events, n_ok, tasks)
    per = 1000 / tasks * 1000
    return {
        "events": events,
        "batches": recorder.stats.batches,
        "recorder_ms_per_1000_tasks": round(cpu * per, 1),
        "postgres_ms_per_1000_tasks": round(pg_cpu * per, 1),
        "events_per_second": round(events / wall),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recorder_cost", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=600, help="recorder batch size (entries)")
    parser.add_argument("--fetch", type=int, default=16, help="tasks per fetch while producing")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--drop-index", action="append", default=[])
    parser.add_argument(
        "--no-gc-tuning",
        action="store_true",
        help="leave the garbage collector as it is (``jobqueue recorder`` tunes it; this prices that)",
    )
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="jobqueue-recorder-cost-"))
    os.chmod(base, 0o755)
    redis_server = RedisServer(base / "redis").start()
    pg = PostgresServer(base / "pg", durable=True).start()
    try:
        database_url = pg.create_database("bench")
        migrate(database_url)
        with psycopg.connect(database_url, autocommit=True) as conn:
            for name in args.drop_index:
                conn.execute(psycopg.sql.SQL("DROP INDEX {}").format(psycopg.sql.Identifier(name)))
        settings = Settings(
            redis_url=SecretStr(redis_server.url), key_prefix="cost", events_max_length=10_000_000
        )
        assert pg.process is not None
        if not args.no_gc_tuning:
            tune_garbage_collector()  # as the ``jobqueue recorder`` process does once it is built
        reps = [
            one_rep(settings, database_url, pg.process.pid, args.tasks, args.batch, args.fetch)
            for _ in range(args.reps)
        ]
        keys = ("recorder_ms_per_1000_tasks", "postgres_ms_per_1000_tasks", "events_per_second")
        out = {
            "tasks": args.tasks,
            "batch": args.batch,
            "dropped_indexes": args.drop_index,
            "gc_tuned": not args.no_gc_tuning,
            "load_average": os.getloadavg(),
            **{
                k: {"median": statistics.median(r[k] for r in reps), "runs": [r[k] for r in reps]}
                for k in keys
            },
            "batches": [r["batches"] for r in reps],
        }
        print(json.dumps(out))
    finally:
        pg.stop()
        redis_server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
