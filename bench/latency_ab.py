"""Latency A/B between source trees: ``python -m bench.latency_ab``.

The harness's latency phase (``Runner.latency``: the worker command already running, tasks enqueued
open-loop at a steady rate, task start minus enqueue time, every run checked exactly-once) for the
``jobqueue worker`` of each tree (``--trees name=path/to/worker_image,...``; that directory goes first on
the worker's PYTHONPATH, so its ``jobqueue`` package shadows the installed one), interleaved round by
round with the order alternating, on one dedicated ``redis-server``. The producer is this checkout's
(the enqueue path is not what is compared). Prints every run, then min / median / max of the p50 and
p99 per tree and setting.

    python -m bench.latency_ab --trees main=/work/main/worker_image,branch=worker_image \\
        --settings thread:8x2,thread:8,process:4 --rounds 4 --seconds 10

A setting is ``pool:concurrency`` with an optional ``xN`` for ``--processes N`` (the tuned setting is
``thread:8x2``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.adapters.base import Adapter, WorkerSetting
from bench.adapters.jobqueue_adapter import APP
from bench.runner import Runner
from jobqueue.embedded.redis_server import RedisServer

REPO_ROOT = Path(__file__).resolve().parent.parent


def tree_adapter(tree: Path, pool: str, concurrency: int, processes: int = 1) -> Adapter:
    """The jobqueue adapter, with the worker command run from ``tree``."""
    extra = ["--processes", str(processes)] if processes > 1 else []

    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        # `env` puts the tree first on the path the runner's environment sets (the repo root).
        return [
            "env", f"PYTHONPATH={tree.resolve()}{os.pathsep}{REPO_ROOT}",
            str(bin_dir / "python"), "-m", "jobqueue", "--log-level", "WARNING", "worker",
            "--app", APP, "--queues", "bench", "--pool", pool, "--concurrency", str(concurrency), *extra,
        ]  # fmt: skip

    setting = WorkerSetting(f"{tree} --pool {pool} --concurrency {concurrency} {' '.join(extra)}", argv)
    return Adapter(name="jobqueue", venv="main", has_batch=True, default=setting, tuned=setting)


def main(argv: list[str] | None = None) -> int:
    """Interleaved rounds; prints every run, then the ranges."""
    parser = argparse.ArgumentParser(prog="python -m bench.latency_ab", description=__doc__)
    parser.add_argument("--trees", required=True, help="name=path to a worker_image dir, comma-separated")
    parser.add_argument("--settings", default="thread:8x2,process:4", help="pool:concurrency[xN], ...")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args(argv)
    trees = [(n, Path(p)) for n, p in (item.split("=", 1) for item in args.trees.split(","))]
    settings = []
    for item in args.settings.split(","):
        pool, _, rest = item.partition(":")
        concurrency, _, processes = rest.partition("x")
        settings.append((pool, int(concurrency), int(processes or 1)))
    out = Path(tempfile.mkdtemp(prefix="jq-latency-ab-"))
    server = RedisServer(out / "redis", appendonly=False).start()
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    failed = 0
    try:
        runner = Runner(server.url, out, {"main": Path(sys.executable).parent}, tasks=0)
        for rnd in range(args.rounds):
            order = trees if rnd % 2 == 0 else trees[::-1]
            for pool, conc, procs in settings:
                label = f"{pool}:{conc}" + (f"x{procs}" if procs > 1 else "")
                for name, tree in order:
                    runner.flush()
                    adapter = tree_adapter(tree, pool, conc, procs)
                    sample = runner.latency(adapter, rnd, args.rate, args.seconds)
                    p50, p99 = sample.detail["p50_ms"], sample.detail["p99_ms"]
                    load = os.getloadavg()[0]
                    status = "ok" if sample.ok else f"FAILED {sample.detail}"
                    print(f"round {rnd} {label} {name}: p50 {p50:.3f} ms p99 {p99:.3f} ms "
                          f"(load {load:.1f}) {status}", flush=True)  # fmt: skip
                    if sample.ok:
                        results.setdefault((label, name), []).append((p50, p99))
                    else:
                        failed += 1
    finally:
        server.stop()
    print(f"\nmin / median / max over {args.rounds} rounds, {args.rate:g}/s for {args.seconds:g} s each")
    for (setting, name), runs in results.items():
        cells = []
        for label, values in (("p50", [r[0] for r in runs]), ("p99", [r[1] for r in runs])):
            low, mid, high = min(values), statistics.median(values), max(values)
            cells.append(f"{label} {low:.3f} / {mid:.3f} / {high:.3f} ms")
        print(f"{setting:12} {name:10} " + "   ".join(cells))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
