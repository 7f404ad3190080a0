"""Enqueue cost per task, A/B: ``python -m bench.enqueue_cost``.

Rate, producer CPU, Redis CPU and Redis command time per task of one-by-one and batch enqueue (the
harness's producer calls, ``bench.tasks.<system>_tasks``), for jobqueue, optionally a second jobqueue
checkout (``--baseline``, e.g. main's ``worker_image`` directory), and Huey, in interleaved rounds on one
dedicated ``redis-server``. Each measurement runs in a fresh subprocess of the system's venv; the order of
the variants is reversed every other round so load drifting on a shared machine hits them alike. CPU
figures are steadier than rates there: a producer's CPU per task does not count the time it waited for a
core.

    python -m bench.enqueue_cost --rounds 10
    python -m bench.enqueue_cost --baseline /path/to/main/worker_image --rounds 10
    python -m bench.enqueue_cost --floor --rounds 10   # with the round-trip floor (PING, trivial EVALSHA)

A baseline is imported through PYTHONPATH ahead of the installed jobqueue, so it must be a directory that
holds a ``jobqueue`` package.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

from bench.peers_env import ensure_venv
from jobqueue.embedded.redis_server import RedisServer

FIGURES = ("rate", "client_cpu_us", "redis_cpu_us", "command_us")


def _variants(baseline: str | None, huey: bool, floor: bool) -> dict[str, tuple[Path, str, str | None]]:
    """name -> (python, system, PYTHONPATH prefix)."""
    here = Path(sys.executable)
    variants: dict[str, tuple[Path, str, str | None]] = {}
    if baseline:
        variants["baseline"] = (here, "jobqueue", baseline)
    variants["jobqueue"] = (here, "jobqueue", None)
    if huey:
        variants["huey"] = (ensure_venv("peers") / "python", "huey", None)
    if floor:
        variants["floor"] = (here, "floor", None)
    return variants


def _modes(system: str, one: int, batch: int) -> list[tuple[str, int]]:
    if system == "jobqueue":
        return [("one", one), ("batch", batch)]
    if system == "floor":
        return [("ping", one), ("evalsha", one)]
    return [("one", one)]


def main(argv: list[str] | None = None) -> int:
    """Interleaved rounds; prints every sample and the medians with their ranges."""
    parser = argparse.ArgumentParser(prog="python -m bench.enqueue_cost", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--one", type=int, default=5000, help="tasks enqueued one by one per sample")
    parser.add_argument("--batch", type=int, default=20000, help="tasks enqueued in batches per sample")
    parser.add_argument("--baseline", default=None, help="a directory holding another jobqueue package")
    parser.add_argument("--without-huey", action="store_true", help="jobqueue variants only")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also the one-by-one round-trip floor: a PING, a trivial EVALSHA per call on a kept connection",
    )
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    variants = _variants(args.baseline, huey=not args.without_huey, floor=args.floor)
    server = RedisServer(Path(tempfile.mkdtemp(prefix="jq-enqueue-cost-")), appendonly=False).start()
    conn = redis.Redis.from_url(server.url)
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for round_no in range(args.rounds):
            names = list(variants) if round_no % 2 == 0 else list(reversed(variants))
            for name in names:
                python, system, path = variants[name]
                env = dict(os.environ, BENCH_REDIS_URL=server.url, PYTHONPATH=str(root))
                if path:
                    env["PYTHONPATH"] = f"{path}{os.pathsep}{root}"
                for mode, n in _modes(system, args.one, args.batch):
                    conn.flushdb()
                    out = subprocess.run(
                        [str(python), "-m", "bench.enqueue_measure", system, mode, str(n)],
                        cwd=root,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=600,
                        check=True,
                    )
                    sample = json.loads(out.stdout)
                    samples.setdefault((name, mode), []).append(sample)
                    figures = "  ".join(f"{k} {v:,.1f}" for k, v in sample.items())
                    print(
                        f"round {round_no} {name:9} {mode:5} {figures}  load {os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
    finally:
        server.stop()
    print(f"\nmedian (min-max) of {args.rounds} rounds, per task")
    print(f"{'variant':9} {'mode':5} " + " ".join(f"{f:>26}" for f in FIGURES))
    for (name, mode), rows in samples.items():
        cells = []
        for f in FIGURES:
            values = [r[f] for r in rows]
            cells.append(f"{statistics.median(values):,.1f} ({min(values):,.1f}-{max(values):,.1f})")
        print(f"{name:9} {mode:5} " + " ".join(f"{c:>26}" for c in cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
