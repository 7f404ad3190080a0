"""Worker CPU per task, A/B between source trees: ``python -m bench.worker_cpu``.

Runs ``jobqueue worker`` from each tree (``--trees name=path/to/worker_image,...``; the tree's directory
goes first on PYTHONPATH, so its ``jobqueue`` package and Lua scripts shadow the installed one) on one
dedicated ``redis-server``, interleaved round by round (the order alternates), and reports per task:

- processing rate (first task start to last, from the runs file, as the harness measures it);
- worker CPU in microseconds, the worker process (and its kernel share) and its pool children apart
  (``/proc/<pid>/stat``);
- Redis CPU in microseconds and Redis commands (INFO deltas).

Each run loads ``--tasks`` no-op tasks into a paused queue while the worker is up and idle, then resumes
it, so the figures hold processing only (no start-up, no enqueue). Every run is checked exactly-once.

    python -m bench.worker_cpu --trees main=/tmp/jq-main/worker_image,branch=worker_image \\
        --settings thread:16,process:4 --tasks 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from pydantic import SecretStr

from bench.adapters.jobqueue_adapter import APP
from bench.record import RUNS_FILE_ENV
from bench.redis_stats import cost_between, snapshot
from bench.runs import check, count_lines, read_starts
from jobqueue import Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.keys import GlobalKeys, QueueKeys

QUEUE = "bench"
REPO_ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int, kernel_only: bool = False) -> float:
    """utime + stime (or stime alone) of one process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[12]) + (0 if kernel_only else int(fields[11]))) / TICKS


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(c) for c in text]
    return out


def _cpu(pid: int) -> tuple[float, float, float]:
    """(worker process CPU, its children's CPU, the worker's kernel CPU alone) now. Children replaced
    meanwhile are not counted: the no-op task never crashes one."""
    kids = 0.0
    for child in _children(pid):
        with contextlib.suppress(FileNotFoundError):  # exited meanwhile
            kids += _cpu_seconds(child)
    return _cpu_seconds(pid), kids, _cpu_seconds(pid, kernel_only=True)


def run_once(
    url: str, tree: Path, pool: str, concurrency: int, tasks: int, work: Path, log_level: str = "WARNING"
) -> dict[str, float]:
    """One worker run over ``tasks`` pre-loaded tasks; per-task figures."""
    conn = redis.Redis.from_url(url, decode_responses=True)
    conn.flushdb()
    settings = Settings(redis_url=SecretStr(url))
    client = Client(settings)
    admin = QueueAdmin(client)
    admin.pause(QUEUE)
    workers_key = GlobalKeys(settings.key_prefix).workers
    leases_key = QueueKeys(settings.key_prefix, QUEUE).leases
    runs = work / f"runs-{time.monotonic_ns()}"
    # A plain function in the async pool runs in the loop's thread executor: its no-op is a coroutine.
    task = "anoop" if pool == "async" else "noop"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree.resolve()), str(REPO_ROOT)]),
        "BENCH_REDIS_URL": url,
        "JOBQUEUE_REDIS_URL": url,
        RUNS_FILE_ENV: str(runs),
    }
    argv = [sys.executable, "-m", "jobqueue", "--log-level", log_level, "worker", "--app", APP,
            "--queues", QUEUE, "--pool", pool, "--concurrency", str(concurrency)]  # fmt: skip
    log = (work / "worker.log").open("ab")  # the worker's lines go to a file, never to this terminal
    proc = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while not conn.zcard(workers_key) and time.monotonic() < deadline:
            time.sleep(0.05)
        for first in range(0, tasks, 1000):
            batch = range(first, min(tasks, first + 1000))
            client.enqueue_many([make_request(task, [s], queue=QUEUE) for s in batch])
        time.sleep(1.5)  # the worker settles into its idle wait
        cpu_before, redis_before = _cpu(proc.pid), snapshot(conn)
        admin.resume(QUEUE)
        last, last_change = 0, time.monotonic()
        while (done := count_lines(runs)) < tasks:
            if done != last:
                last, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > 20:
                raise RuntimeError(f"stalled at {done}/{tasks}")
            time.sleep(0.005)
        # Acks trail the last start by a batch; wait until every lease is gone before reading CPU.
        last_start = time.time()
        while conn.zcard(leases_key) and time.monotonic() - last_change < 20:
            time.sleep(0.002)
        acks_done = time.time()
        cpu_after, redis_after = _cpu(proc.pid), snapshot(conn)
    finally:
        log.close()
        client.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result = check(runs, range(tasks))
    if result.lost or result.duplicates:
        raise RuntimeError(f"run failed: {result}")
    starts = sorted(t for _, t in read_starts(runs))
    runs.unlink()
    cost = cost_between(redis_before, redis_after).per_task(tasks)
    return {
        "rate": tasks / max(starts[-1] - starts[0], 1e-9),
        "parent_us": (cpu_after[0] - cpu_before[0]) * 1e6 / tasks,
        "children_us": (cpu_after[1] - cpu_before[1]) * 1e6 / tasks,
        "parent_sys_us": (cpu_after[2] - cpu_before[2]) * 1e6 / tasks,
        "redis_us": cost["cpu_us"],
        "redis_cmds": cost["commands"],
        "scripts": cost["script_calls"],
        # How long the last outcomes waited for their ack after the last task started (polled: +-2 ms).
        "ack_tail_ms": (acks_done - last_start) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    """Interleaved rounds; prints every run, then min / median / max per tree and setting."""
    parser = argparse.ArgumentParser(prog="python -m bench.worker_cpu", description=__doc__)
    parser.add_argument("--trees", required=True, help="name=path to a worker_image dir, comma-separated")
    parser.add_argument("--settings", default="thread:16,process:4", help="pool:concurrency, comma-separated")
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    # INFO: with the per-task success line (written to a file, as a container's log would be).
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    trees = [(n, Path(p)) for n, p in (item.split("=", 1) for item in args.trees.split(","))]
    settings = [(p, int(c)) for p, c in (item.split(":") for item in args.settings.split(","))]
    work = Path(tempfile.mkdtemp(prefix="jq-wcpu-"))
    server = RedisServer(work / "redis", appendonly=False).start()
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    cols = ["rate", "parent_us", "parent_sys_us", "children_us", "redis_us", "redis_cmds", "scripts"]
    cols.append("ack_tail_ms")
    try:
        for rnd in range(args.rounds):
            order = trees if rnd % 2 == 0 else trees[::-1]
            for pool, conc in settings:
                for name, tree in order:
                    r = run_once(server.url, tree, pool, conc, args.tasks, work, args.log_level)
                    results.setdefault((f"{pool}:{conc}", name), []).append(r)
                    line = " ".join(f"{c}={r[c]:.2f}" for c in cols)
                    print(f"round {rnd} {pool}:{conc} {name}: {line}", flush=True)
    finally:
        server.stop()
    print(f"\nper task; min / median / max of {args.rounds} rounds of {args.tasks} tasks")
    for (setting, name), runs in results.items():
        cells = []
        for c in cols:
            values = [r[c] for r in runs]
            fmt = ".2f" if c == "scripts" else ".0f"
            cells.append(f"{c} {min(values):{fmt}}/{statistics.median(values):{fmt}}/{max(values):{fmt}}")
        print(f"{setting:12} {name:10} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
