"""Concurrent producers, side by side: ``python -m bench.concurrent_enqueue``.

A web server's producer side: 100 callers in one process enqueue at once, each awaiting its own enqueue
before the next (``bench.enqueue SYSTEM concurrent``). jobqueue with ``AsyncClient`` from 100 coroutines
and the sync ``Client`` from 100 threads, Taskiq and arq from 100 coroutines, Huey from 100 threads, each
against the same system one call at a time in one caller (the one-by-one rate). Every measurement is a
fresh subprocess of the system's venv on one dedicated ``redis-server``, emptied between runs; the order
of the variants rotates every round so load drifting on a shared machine hits them alike. Medians.

    python -m bench.concurrent_enqueue --tasks 20000 --rounds 3
    python -m bench.concurrent_enqueue --variants jobqueue-async,jobqueue-one --tasks 5000 --rounds 1

The table is written into docs/benchmarks.md between the ``bench:concurrent`` markers, and the headline
figures saved for bench.summary, unless ``--no-docs``.
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

from bench import headlines, summary
from bench.peers_env import ensure_venv
from bench.report import command_line, markdown, measured_with, replace_results
from bench.runner import REPO_ROOT
from jobqueue.embedded.redis_server import RedisServer

# name -> (venv, system, bench.enqueue arguments after N; None = the system's one-by-one call)
VARIANTS: dict[str, tuple[str, str, list[str]]] = {
    "jobqueue-one": ("main", "jobqueue", ["one"]),
    "jobqueue-async-one": ("main", "jobqueue", ["concurrent", "--producers", "1", "--style", "async"]),
    "jobqueue-async": ("main", "jobqueue", ["concurrent", "--style", "async"]),
    "jobqueue-threads": ("main", "jobqueue", ["concurrent", "--style", "threads"]),
    "taskiq-one": ("taskiq", "taskiq", ["one"]),
    "taskiq-async": ("taskiq", "taskiq", ["concurrent", "--style", "async"]),
    "arq-one": ("peers", "arq", ["one"]),
    "arq-async": ("peers", "arq", ["concurrent", "--style", "async"]),
    "huey-one": ("peers", "huey", ["one"]),
    "huey-threads": ("peers", "huey", ["concurrent", "--style", "threads"]),
}
DOCS_MARKERS = ("<!-- bench:concurrent:start -->", "<!-- bench:concurrent:end -->")
DESCRIBE = {
    "jobqueue-one": "jobqueue `Client`, one by one",
    "jobqueue-async-one": "jobqueue `AsyncClient`, one by one",
    "jobqueue-async": "jobqueue `AsyncClient`, {n} coroutines",
    "jobqueue-threads": "jobqueue `Client`, {n} threads",
    "taskiq-one": "Taskiq, one by one",
    "taskiq-async": "Taskiq, {n} coroutines",
    "arq-one": "arq, one by one",
    "arq-async": "arq, {n} coroutines",
    "huey-one": "Huey, one by one",
    "huey-threads": "Huey, {n} threads",
}


def table(rates: dict[str, list[float]], cpus: dict[str, list[float]], producers: int) -> str:
    """Per variant: enqueues/s median (min-max) and the producer's CPU per task (concurrent runs only)."""
    rows = [["producer", "enqueue /s, median (min-max)", "producer CPU µs/task, median"]]
    for variant, values in rates.items():
        cpu = statistics.median(cpus[variant])
        rows.append([
            DESCRIBE[variant].format(n=producers),
            f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})",
            "-" if cpu != cpu else f"{cpu:.0f}",  # NaN: a one-by-one run does not report its CPU
        ])  # fmt: skip
    return markdown(rows)


def _python(venv: str) -> Path:
    return Path(sys.executable) if venv == "main" else ensure_venv(venv) / "python"


def _run(variant: str, tasks: int, producers: int, redis_url: str) -> tuple[float, float]:
    """(enqueues per second, producer CPU µs per task; NaN for one-by-one runs, which do not report it)."""
    venv, system, extra = VARIANTS[variant]
    mode, *flags = extra
    argv = [str(_python(venv)), "-m", "bench.enqueue", system, mode, str(tasks), *flags]
    if mode == "concurrent" and "--producers" not in flags:
        argv += ["--producers", str(producers)]
    env = {**os.environ, "BENCH_REDIS_URL": redis_url, "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout)
    cpu_us = float(out["cpu_seconds"]) * 1e6 / float(out["n"]) if "cpu_seconds" in out else float("nan")
    return float(out["n"]) / float(out["seconds"]), cpu_us


def main(argv: list[str] | None = None) -> int:
    """Run the variants in rotated rounds; print one markdown table of medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.concurrent_enqueue")
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--producers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument(
        "--summary-dir", type=Path, default=None, help="headline figures (default: beside --docs)"
    )
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {sorted(unknown)}")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    cpus: dict[str, list[float]] = {v: [] for v in variants}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-concurrent-") as tmp:
        server = RedisServer(Path(tmp)).start()
        conn = redis.Redis.from_url(server.url)
        try:
            for r in range(args.rounds):
                shift = r % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    conn.flushdb()
                    rate, cpu_us = _run(variant, args.tasks, args.producers, server.url)
                    rates[variant].append(rate)
                    cpus[variant].append(cpu_us)
                    print(f"round {r + 1}: {variant} {rate:,.0f}/s {cpu_us:.0f} µs CPU/task", flush=True)
        finally:
            conn.close()
            server.stop()
    load = f"{load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    command = command_line("bench.concurrent_enqueue", argv)
    section = (
        measured_with(command) + f", load average "
        f"{load}; {args.tasks:,} tasks per run, medians (min-max) of {args.rounds} round(s), variants "
        "rotated every round, each a fresh process on one dedicated Redis.\n\n"
        + table(rates, cpus, args.producers)
    )
    print("\n" + section)
    if not args.no_docs:
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, section, DOCS_MARKERS))
        medians: dict[str, float | None] = {v: statistics.median(r) for v, r in rates.items()}
        figures = headlines.concurrent_enqueue(medians)
        summary.publish(
            "concurrent_enqueue",
            "bench.concurrent_enqueue",
            argv,
            load,
            figures,
            summary.directory_for(args.docs, args.summary_dir),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
