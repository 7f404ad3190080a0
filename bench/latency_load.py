"""Latency under load, each system's default worker command: ``python -m bench.latency_load``.

For every system, round by round (systems interleaved, order rotated): first its maximum rate with its
default worker command (the harness's processing phase, ``Runner.process``: N tasks pre-loaded, first
start to last), then the same command kept running while paced producers enqueue open-loop at 100
tasks/s and at 50% and 90% of that round's maximum; task start minus enqueue time (``time.time()`` in the
producer just before the send and in the task, as in ``Runner.latency``), p50 and p99, every run checked
exactly-once. One producer process per ``--per-producer`` tasks/s (a single Python producer cannot send
much more than that one by one), at most ``--max-producers`` (default: one per core), each with its own
share of the sequence numbers, all starting to send at one agreed time once imported.
The rate each load actually reached is reported: on a shared 2-core machine the producers compete
with the worker for the cores, which is part of what a real deployment at that load sees.

    python -m bench.latency_load --systems jobqueue,huey,taskiq,dramatiq,arq,celery,rq --rounds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench import headlines, summary
from bench.adapters import ADAPTERS, Adapter
from bench.adapters.base import WorkerSetting
from bench.peers_env import ensure_venv, main_bin_dir
from bench.report import command_line, markdown, replace_results
from bench.runner import REPO_ROOT, STALL_SECONDS, Runner, stop_worker
from bench.runs import check, first_starts, wait_for_runs
from jobqueue.embedded.redis_server import RedisServer

MARKERS = ("<!-- bench:latency-load:start -->", "<!-- bench:latency-load:end -->")


def _rq_worker(bin_dir: Path, redis_url: str) -> list[str]:
    return [str(bin_dir / "rq"), "worker", "--url", redis_url, "-q", "bench"]


# The default command of a system whose default exits on an empty queue, as a long-running worker.
STEADY_DEFAULTS: dict[str, WorkerSetting] = {
    "rq": WorkerSetting("rq worker (one worker, fork per job)", _rq_worker),
}


@dataclasses.dataclass(frozen=True)
class Load:
    """One latency run: the rate asked for and what came of it."""

    label: str  # "100/s" | "50%" | "90%"
    target: float
    sent: float  # tasks/s the producers actually reached
    p50_ms: float | None
    p99_ms: float | None
    ok: bool


def steady_default(adapter: Adapter) -> Adapter:
    """The adapter whose latency runs use its default worker command (kept running)."""
    steady = STEADY_DEFAULTS.get(adapter.name, adapter.default)
    return dataclasses.replace(adapter, steady=steady)


def _percentiles(latencies: list[float]) -> tuple[float | None, float | None]:
    if not latencies:
        return None, None
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def paced_latency(
    runner: Runner,
    adapter: Adapter,
    name: str,
    label: str,
    rate: float,
    seconds: float,
    producers: int,
    warmup: float,
) -> Load:
    """The worker command (its steady setting) running; ``rate`` tasks/s for ``seconds`` from
    ``producers`` processes; p50 / p99 of task start minus enqueue."""
    runs_file = runner.out_dir / f"{name}.runs"
    runs_file.unlink(missing_ok=True)
    n = max(1, int(rate * seconds))
    shares = [range(p * n // producers, (p + 1) * n // producers) for p in range(producers)]
    worker = runner._start_worker(adapter, "steady", runs_file, runner.out_dir / f"{name}.log")
    enqueued_at: dict[int, float] = {}
    try:
        # The producers import and connect while the worker warms up, then all start sending at once.
        start_at = time.time() + warmup
        python = runner.bins[adapter.venv] / "python"
        procs = [
            subprocess.Popen(
                [
                    str(python),
                    "-m",
                    "bench.enqueue",
                    adapter.name,
                    "steady",
                    str(len(share)),
                    "--first",
                    str(share.start),
                    "--rate",
                    str(rate / producers),
                    "--start-at",
                    str(start_at),
                ],
                cwd=REPO_ROOT,
                env=runner._env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for share in shares
        ]
        try:
            for proc, share in zip(procs, shares, strict=True):
                out, err = proc.communicate(timeout=seconds * 10 + 120)
                if proc.returncode != 0:
                    raise RuntimeError(f"{adapter.name} producer failed: {err.decode()[-2000:]}")
                enqueued_at.update(zip(share, json.loads(out)["enqueued_at"], strict=True))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        wait_for_runs(runs_file, n, STALL_SECONDS)
    finally:
        stop_worker(worker, adapter.stop_timeout)
    result = check(runs_file, range(n))
    first = first_starts(runs_file)
    p50, p99 = _percentiles([(first[s] - enqueued_at[s]) * 1000 for s in first if s in enqueued_at])
    sent_span = max(enqueued_at.values()) - min(enqueued_at.values())
    sent = (len(enqueued_at) - 1) / sent_span if sent_span > 0 else rate
    return Load(label, rate, sent, p50, p99, result.ok)


def _ms(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "n/a"
    if len(got) == 1:
        return f"{got[0]:.2f}"
    return f"{statistics.median(got):.2f} ({min(got):.2f}-{max(got):.2f})"


def _rate(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None]
    return f"{statistics.median(got):,.0f}" if got else "n/a"


LABELS = ("100/s", "50%", "90%")


def rows(
    systems: Sequence[str], maxima: dict[str, list[float | None]], loads: dict[str, list[Load]]
) -> list[list[str]]:
    """The table: per system, its maximum rate, then p50 / p99 at each load (median (min-max))."""
    head = ["system", "default command", "max /s"]
    for label in LABELS:
        head += [f"{label}: sent /s", f"{label}: p50 ms", f"{label}: p99 ms"]
    out = [head]
    for system in systems:
        adapter = steady_default(ADAPTERS[system])
        assert adapter.steady is not None
        row = [system, f"`{adapter.steady.describe}`", _rate(maxima[system])]
        for label in LABELS:
            runs = [load for load in loads[system] if load.label == label]
            failed = sum(not load.ok for load in runs)
            ok = [load for load in runs if load.ok]
            row += [
                _rate([load.sent for load in ok]),
                _ms([load.p50_ms for load in ok]),
                _ms([load.p99_ms for load in ok]) + (f" ({failed} failed)" if failed else ""),
            ]
        out.append(row)
    return out


def summary_figures(loads: dict[str, list[Load]]) -> list[dict[str, object]]:
    """The headline figures (bench/headlines.py) from the runs that were checked exactly-once."""

    def median(label: str, field: str) -> dict[str, float | None]:
        out = {}
        for system, runs in loads.items():
            got = [
                getattr(r, field) for r in runs if r.label == label and r.ok and getattr(r, field) is not None
            ]
            out[system] = statistics.median(got) if got else None
        return out

    return headlines.latency_load(
        median("100/s", "p50_ms"), median("100/s", "p99_ms"), median("50%", "p99_ms")
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.latency_load``."""
    parser = argparse.ArgumentParser(prog="python -m bench.latency_load", description=__doc__)
    parser.add_argument("--systems", default=",".join(ADAPTERS), help="comma-separated")
    parser.add_argument("--tasks", type=int, default=3000, help="pre-loaded tasks of the maximum-rate run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each latency run")
    parser.add_argument("--per-producer", type=float, default=1000.0, help="tasks/s per producer process")
    # More producer processes than cores only adds contention on the machine being measured.
    parser.add_argument("--max-producers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--warmup", type=float, default=None, help="seconds; default the adapter's")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/latency-<timestamp>")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument(
        "--summary-dir", type=Path, default=None, help="headline figures (default: beside --docs)"
    )
    args = parser.parse_args(argv)

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(systems) - ADAPTERS.keys()
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; known: {sorted(ADAPTERS)}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = (args.out or REPO_ROOT / "bench" / "results" / f"latency-{stamp}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    bins = {"main": main_bin_dir()}
    for venv in sorted({ADAPTERS[s].venv for s in systems} - {"main"}):
        bins[venv] = ensure_venv(venv)
    maxima: dict[str, list[float | None]] = {s: [] for s in systems}
    loads: dict[str, list[Load]] = {s: [] for s in systems}
    load_start = os.getloadavg()[0]
    server = RedisServer(out / "redis", appendonly=False).start()
    try:
        runner = Runner(server.url, out, bins, args.tasks)
        for rnd in range(args.rounds):
            order = systems[rnd % len(systems) :] + systems[: rnd % len(systems)]
            for system in order:
                adapter = steady_default(ADAPTERS[system])
                warmup = adapter.warmup_seconds if args.warmup is None else args.warmup
                runner.flush()
                runner.enqueue(adapter, rnd, "batch" if adapter.has_batch else "one")
                top = runner.process(adapter, rnd, "default").value
                maxima[system].append(top)
                print(
                    f"round {rnd + 1} {system}: max {'FAILED' if top is None else f'{top:,.0f}/s'}",
                    flush=True,
                )
                targets = [("100/s", 100.0)]
                if top is not None:
                    targets += [("50%", top * 0.5), ("90%", top * 0.9)]
                for label, rate in targets:
                    runner.flush()
                    name = f"{system}-r{rnd}-{label.replace('/', '')}"
                    producers = min(args.max_producers, max(1, math.ceil(rate / args.per_producer)))
                    load = paced_latency(runner, adapter, name, label, rate, args.seconds, producers, warmup)
                    loads[system].append(load)
                    print(
                        f"round {rnd + 1} {system} {label}: target {rate:,.0f}/s sent {load.sent:,.0f}/s "
                        f"p50 {load.p50_ms} ms p99 {load.p99_ms} ms {'ok' if load.ok else 'FAILED'}",
                        flush=True,
                    )
    finally:
        server.stop()
    load_end = os.getloadavg()[0]
    table = markdown(rows(systems, maxima, loads))
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = command_line("bench.latency_load", argv)
    section = (
        f"Measured {date} with `{command}`, load average {load_start:.1f} at start, {load_end:.1f} at end; "
        f"medians of {args.rounds} round(s), (min-max); {args.seconds:g} s per load; max = the default "
        "command's processing rate on pre-loaded tasks in the same round; sent = the rate the producers "
        "reached.\n\n" + table + "\n"
    )
    print()
    print(section)
    if not args.no_docs:
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, section, MARKERS))
        print(f"wrote {args.docs}")
        load_text = f"{load_start:.1f} at start, {load_end:.1f} at end"
        figures = summary_figures(loads)
        summary.publish(
            "latency_load",
            "bench.latency_load",
            argv,
            load_text,
            figures,
            summary.directory_for(args.docs, args.summary_dir),
        )
    failed = any(top is None for v in maxima.values() for top in v) or any(
        not load.ok for v in loads.values() for load in v
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
