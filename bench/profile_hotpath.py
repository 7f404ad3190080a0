"""Where jobqueue's time goes per task, in microseconds: ``python -m bench.profile_hotpath``.

Splits each hot-path step into client Python (measured without I/O, and the client process's CPU time
with the I/O: its socket system calls included), Redis server time (INFO
commandstats ``usec`` of the script calls, which includes the commands they run) and the rest of the
wall time (round trip: socket syscalls, redis-py packing and parsing, scheduling). Runs on a dedicated
``redis-server`` it starts (persistence off), or on ``--redis-url`` (a server you own: it is FLUSHDB'd).

    python -m bench.profile_hotpath --tasks 20000
"""

from __future__ import annotations

import argparse
import inspect
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from pydantic import SecretStr

from jobqueue.broker import completion_calls as completions
from jobqueue.broker.batch_enqueue import plan_enqueue
from jobqueue.broker.client import Client
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import Job, Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.redis_io import load_all_scripts, run_script, run_scripts
from jobqueue.broker.scripts import ScriptCall
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.settings import Settings

QUEUE = "prof"


def completion_calls(
    settings: Settings, pairs: list[tuple[Job, Outcome]], rng: random.Random
) -> list[ScriptCall]:
    """The calls the worker's acker sends for a batch of outcomes (so older versions can be compared: before
    batched acks there was one ack call per task, pipelined)."""
    # Trees before the held-lease index take no worker id.
    worker: dict[str, Any] = {}
    if "worker_id" in inspect.signature(completions.build_completion).parameters:
        worker = {"worker_id": "prof"}
    if hasattr(completions, "plan_completions"):
        return list(completions.plan_completions(settings, pairs, lambda job: None, rng, **worker).calls)
    return [
        completions.build_completion(settings, job, outcome, None, rng, **worker) for job, outcome in pairs
    ]


def _redis_usec(conn: redis.Redis) -> tuple[int, int, float]:
    """(script calls, script usec, server CPU seconds) so far."""
    stats: dict[str, Any] = conn.info("commandstats")
    calls = usec = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        if name in stats:
            calls += int(stats[name]["calls"])
            usec += int(stats[name]["usec"])
    cpu: dict[str, Any] = conn.info("cpu")
    return calls, usec, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def _measure(conn: redis.Redis, n: int, step: Callable[[], None]) -> dict[str, float]:
    before = _redis_usec(conn)
    cpu_start = time.process_time()
    start = time.perf_counter()
    step()
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - cpu_start
    after = _redis_usec(conn)
    return {
        "wall_us": wall * 1e6 / n,
        "rate": n / wall,
        "client_cpu_us": client_cpu * 1e6 / n,
        "scripts_per_task": (after[0] - before[0]) / n,
        "redis_script_us": (after[1] - before[1]) / n,
        "redis_cpu_us": (after[2] - before[2]) * 1e6 / n,
    }


def profile(url: str, tasks: int, batch: int, fetch_batch: int) -> dict[str, dict[str, float]]:
    """Every phase once; returns per-task figures by phase."""
    settings = Settings(redis_url=SecretStr(url))
    client = Client(settings)
    conn = client.redis
    conn.flushdb()
    load_all_scripts(conn)
    out: dict[str, dict[str, float]] = {}

    # Client Python alone: validation, id, JSON, the script call (no I/O), as Client.enqueue builds it.
    start = time.perf_counter()
    for seq in range(tasks):
        plan_enqueue(settings, [make_request("noop", [seq], queue=QUEUE)])
    out["enqueue: client build (no I/O)"] = {"wall_us": (time.perf_counter() - start) * 1e6 / tasks}

    def one_by_one() -> None:
        for seq in range(tasks):
            client.enqueue("noop", [seq], queue=QUEUE)

    out["enqueue one by one"] = _measure(conn, tasks, one_by_one)
    conn.flushdb()

    def batched() -> None:
        for first in range(0, tasks, batch):
            client.enqueue_many(
                [make_request("noop", [s], queue=QUEUE) for s in range(first, min(tasks, first + batch))]
            )

    out[f"enqueue_many ({batch} per call)"] = _measure(conn, tasks, batched)

    # Processing, broker protocol only (what a worker does per task, minus running it).
    fetched: list[Any] = []

    def fetch_all() -> None:
        while True:
            reply = parse_fetch(QUEUE, run_script(conn, build_fetch(settings, QUEUE, fetch_batch, "prof")))
            if not reply.jobs:
                return
            fetched.extend(reply.jobs)

    out[f"fetch ({fetch_batch} per call)"] = _measure(conn, tasks, fetch_all)
    rng = random.Random(0)
    pairs = [(job, Outcome(job.id, job.token, OutcomeKind.SUCCESS)) for job in fetched]
    start = time.perf_counter()
    # What the worker's acker does with a batch of outcomes (one ack call per queue per batch).
    batches = [
        completion_calls(settings, pairs[i : i + fetch_batch], rng) for i in range(0, len(pairs), fetch_batch)
    ]
    out["ack: client build (no I/O)"] = {"wall_us": (time.perf_counter() - start) * 1e6 / tasks}

    def ack_all() -> None:
        for calls in batches:
            run_scripts(conn, calls)

    out[f"ack ({fetch_batch} per round trip)"] = _measure(conn, tasks, ack_all)
    client.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the profile ``--repeats`` times and print medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_hotpath", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--fetch-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args(argv)
    server = None
    url = args.redis_url
    if url is None:
        server = RedisServer(Path(tempfile.mkdtemp(prefix="jq-prof-")), appendonly=False).start()
        url = server.url
    try:
        runs = [profile(url, args.tasks, args.batch, args.fetch_batch) for _ in range(args.repeats)]
    finally:
        if server is not None:
            server.stop()
    print(f"per task, median of {args.repeats} runs of {args.tasks} tasks")
    cols = ("rate", "wall_us", "client_cpu_us", "redis_script_us", "redis_cpu_us", "scripts_per_task")
    print(f"{'phase':36} " + " ".join(f"{c:>16}" for c in cols))
    for phase in runs[0]:
        cells = []
        for c in cols:
            values = [r[phase][c] for r in runs if c in r[phase]]
            cells.append(f"{statistics.median(values):16.1f}" if values else f"{'':>16}")
        print(f"{phase:36} " + " ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
