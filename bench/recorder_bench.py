"""Recorder throughput, and what the recorder costs the hot path.

Starts its own Redis and PostgreSQL (embedded, on free 127.0.0.1 ports), migrates, then:

1. drain: fills the event streams with real transitions (enqueue + fetch + ack through the Lua scripts,
   three events per task), then times recorders draining them into PostgreSQL (target >= 5,000 events/s);
2. hot path: enqueue + process throughput for a fixed time, without and then with a `jobqueue recorder`
   process running (target: within 10%).

Usage: python bench/recorder_bench.py [--tasks 30000] [--recorders 1] [--seconds 5] [--rounds 3] [--fast]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.redis_io import load_all_scripts, run_script, run_scripts
from jobqueue.embedded.postgres_server import PostgresServer
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.record.db import open_pool
from jobqueue.record.migrate import migrate
from jobqueue.record.recorder import Recorder
from jobqueue.record.settings import RecordSettings


def produce_and_process(client: Client, tasks: int, batch: int = 500) -> int:
    """Enqueue and complete ``tasks`` tasks through the real scripts; returns tasks completed."""
    done = 0
    while done < tasks:
        n = min(batch, tasks - done)
        client.enqueue_many([make_request("bench", [i]) for i in range(n)])
        reply = run_script(client.redis, build_fetch(client.settings, "default", n, "bench-worker"))
        jobs = parse_fetch("default", reply).jobs
        calls = [
            build_completion(
                client.settings,
                j,
                Outcome(j.id, j.token, OutcomeKind.SUCCESS, "1"),
                None,
                worker_id="bench-worker",
            )
            for j in jobs
        ]
        run_scripts(client.redis, calls)
        done += len(jobs)
    return done


def drain_benchmark(client: Client, database_url: str, tasks: int, recorders: int) -> dict[str, float]:
    produce_and_process(client, tasks)
    stream = client.queue_keys("default").events
    events = int(client.redis.xlen(stream))
    options = RecordSettings(block_ms=100, discover_interval_seconds=0.01)
    pools = [open_pool(database_url, 1, 2) for _ in range(recorders)]
    workers = [
        Recorder(client.settings, options, Client(client.settings).redis, pool, consumer=f"bench-{i}")
        for i, pool in enumerate(pools)
    ]

    def drain(r: Recorder) -> None:
        while r.run_once(block=False):
            pass

    threads = [threading.Thread(target=drain, args=(r,)) for r in workers]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    for pool in pools:
        pool.close()
    recorded = sum(r.stats.recorded for r in workers)
    assert recorded == events, (recorded, events)
    return {"events": events, "seconds": round(elapsed, 3), "events_per_second": round(events / elapsed)}


def hot_path(client: Client, seconds: float) -> float:
    """Tasks enqueued and completed per second by one in-process producer/consumer loop."""
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += produce_and_process(client, 200, batch=200)
    return done / (time.perf_counter() - start)


RECORDER_COMMANDS = {
    "xreadgroup",
    "xack",
    "xautoclaim",
    "xinfo|stream",
    "xinfo|groups",
    "xinfo|consumers",
    "smembers",
    "xgroup|create",
    "hgetall",
    "zrange",
}


def redis_cpu_by_command(client: Client) -> dict[str, int]:
    """Microseconds Redis spent per command since start (INFO commandstats)."""
    stats = client.redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["usec"]) for name, v in stats.items()}


def start_recorder_process(settings: Settings, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "JOBQUEUE_REDIS_URL": settings.redis_url.get_secret_value(),
        "JOBQUEUE_KEY_PREFIX": settings.key_prefix,
        "JOBQUEUE_DATABASE_URL": database_url,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobqueue", "recorder"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=30_000)
    parser.add_argument("--recorders", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one hot-path round")
    parser.add_argument("--rounds", type=int, default=3, help="hot-path rounds with and without, interleaved")
    parser.add_argument("--fast", action="store_true", help="PostgreSQL without fsync (as in the tests)")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="jobqueue-recorder-bench-"))
    os.chmod(base, 0o755)
    redis_server = RedisServer(base / "redis").start()
    pg = PostgresServer(base / "pg", durable=not args.fast).start()
    try:
        database_url = pg.create_database("bench")
        migrate(database_url)
        results: dict[str, object] = {"postgres_durable": not args.fast, "recorders": args.recorders}
        settings = Settings(
            redis_url=SecretStr(redis_server.url), key_prefix="bench1", events_max_length=10_000_000
        )
        client = Client(settings)
        load_all_scripts(client.redis)
        results["drain"] = drain_benchmark(client, database_url, args.tasks, args.recorders)

        # Rounds alternate (without, with, without, ...) and medians are compared: the machine is shared,
        # so a single pair of runs measures the neighbours as much as the recorder.
        without: list[float] = []
        with_recorder: list[float] = []
        recorder_cpu = 0.0
        redis_before = redis_cpu_by_command(client)
        for i in range(args.rounds):
            plain = Client(settings.model_copy(update={"key_prefix": f"plain{i}"}))
            without.append(hot_path(plain, args.seconds))
            recorded = Client(settings.model_copy(update={"key_prefix": f"recorded{i}"}))
            recorded.redis.sadd(recorded.global_keys.queues, "default")
            recorder = start_recorder_process(recorded.settings, database_url, base / "recorder.log")
            try:
                time.sleep(1.0)
                with_recorder.append(hot_path(recorded, args.seconds))
            finally:
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                recorder.terminate()
                recorder.wait(30)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                recorder_cpu += (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime)
        redis_after = redis_cpu_by_command(client)
        spent = {k: redis_after.get(k, 0) - redis_before.get(k, 0) for k in redis_after}
        recorder_commands = sum(v for k, v in spent.items() if k in RECORDER_COMMANDS)
        tasks_recorded = sum(with_recorder) * args.seconds
        # CPU is what the two compete for on a small machine, and unlike throughput it does not move
        # with the neighbours' load.
        results["cost"] = {
            "recorder_process_cpu_ms_per_1000_events": round(
                recorder_cpu * 1000 / (3 * tasks_recorded) * 1000, 1
            ),
            "redis_cpu_share_of_recorder_commands_percent": round(
                recorder_commands / sum(spent.values()) * 100, 1
            ),
        }
        a, b = statistics.median(without), statistics.median(with_recorder)
        results["hot_path_tasks_per_second"] = {
            "without_recorder": [round(x) for x in without],
            "with_recorder": [round(x) for x in with_recorder],
            "median_change_percent": round((b - a) / a * 100, 1),
        }
        print(json.dumps(results, indent=2))
    finally:
        pg.stop()
        redis_server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
