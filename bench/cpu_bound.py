"""CPU-bound tasks side by side: ``python -m bench.cpu_bound``.

Every system runs the benchmark task with ``BENCH_BURN_MS`` set, so each task burns that much CPU (thread
CPU time, bench/record.py) after recording its start; on 2 cores at 2 ms the bound is 1,000 tasks/s. Each
system runs with two worker processes (one per core) in its own usual way; tasks are pre-loaded, the rate
is taken from the first task start to the last (start-up not counted) and every run is checked
exactly-once. Systems are interleaved round by round; medians are reported.

    python -m bench.cpu_bound --systems jobqueue,huey,dramatiq,celery --tasks 3000 --rounds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.adapters import ADAPTERS
from bench.adapters.base import WorkerSetting
from bench.adapters.jobqueue_adapter import worker_setting
from bench.peers_env import bin_dirs
from bench.record import BURN_MS_ENV
from bench.runner import REPO_ROOT, Runner
from jobqueue.embedded.redis_server import RedisServer


def _cmd(describe: str, build: Sequence[str]) -> WorkerSetting:
    """A peer's worker command: ``build[0]`` is the executable in the system's venv."""

    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        return [str(bin_dir / build[0]), *build[1:]]

    return WorkerSetting(describe, argv)


# Two worker processes each, one task at a time per process: the CPU-bound setting of each system.
SETTINGS: dict[str, dict[str, WorkerSetting]] = {
    "jobqueue": {
        "process": worker_setting("process", 2),
        "thread": worker_setting("thread", 1, processes=2),
    },
    "huey": {"process": _cmd("huey_consumer -w 2 -k process",
                             ["huey_consumer", "bench.tasks.huey_tasks.huey", "-w", "2", "-k", "process"])},
    "dramatiq": {"process": _cmd("dramatiq --processes 2 --threads 1",
                                 ["dramatiq", "bench.tasks.dramatiq_tasks", "--queues", "bench",
                                  "--processes", "2", "--threads", "1"])},
    "celery": {"process": ADAPTERS["celery"].default},
}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.cpu_bound``."""
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_bound", description=__doc__)
    parser.add_argument("--systems", default="jobqueue,huey,dramatiq,celery")
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burn-ms", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "cpu-bound")
    args = parser.parse_args(argv)

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    bins = bin_dirs(ADAPTERS[s].venv for s in systems)
    entries = [(s, label, setting) for s in systems for label, setting in SETTINGS[s].items()]
    os.environ[BURN_MS_ENV] = str(args.burn_ms)  # inherited by every worker the runner starts
    bound = os.cpu_count() or 1
    bound_rate = bound * 1000 / args.burn_ms
    rates: dict[str, list[float | None]] = {f"{s} {label}": [] for s, label, _ in entries}
    load_start = os.getloadavg()[0]
    server = RedisServer(out / "redis", appendonly=False).start()
    try:
        runner = Runner(server.url, out, bins, args.tasks)
        for rnd in range(args.rounds):
            order = entries[rnd % len(entries) :] + entries[: rnd % len(entries)]
            for system, label, setting in order:
                adapter = ADAPTERS[system]
                runner.flush()
                runner.enqueue(adapter, rnd, "batch" if adapter.has_batch else "one")
                custom = dataclasses.replace(adapter, default=setting)
                sample = runner.process(custom, rnd, "default")
                rates[f"{system} {label}"].append(sample.value)
                shown = "FAILED" if sample.value is None else f"{sample.value:,.0f}/s"
                print(f"round {rnd + 1} {system} {label}: {shown}", flush=True)
    finally:
        server.stop()
        os.environ.pop(BURN_MS_ENV, None)  # the caller's later workers (a test session) burn nothing
    load_end = os.getloadavg()[0]
    print(f"\nload average {load_start:.1f} at start, {load_end:.1f} at end; {args.tasks} tasks of ", end="")
    print(f"{args.burn_ms} ms CPU, bound {bound_rate:,.0f}/s on {bound} cores")
    print("| system | command | tasks/s, median (min-max) | of the bound | failed |")
    print("|---|---|---|---|---|")
    for system, label, setting in entries:
        got = rates[f"{system} {label}"]
        ok = [r for r in got if r is not None]
        shown = f"{statistics.median(ok):,.0f} ({min(ok):,.0f}-{max(ok):,.0f})" if ok else "n/a"
        share = f"{statistics.median(ok) / bound_rate:.0%}" if ok else "n/a"
        failed = len(got) - len(ok)
        print(f"| {system} | `{setting.describe}` | {shown} | {share} | {failed} |")
    return 0 if all(r is not None for v in rates.values() for r in v) else 1


if __name__ == "__main__":
    sys.exit(main())
