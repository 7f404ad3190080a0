"""``python -m bench``: start a dedicated Redis, run every system, print the table, write the docs."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench import headlines, summary
from bench.adapters import ADAPTERS, Adapter
from bench.peers_env import bin_dirs
from bench.report import (
    command_line,
    console,
    headline_medians,
    latency_rows,
    markdown,
    replace_results,
    table,
)
from bench.runner import REPO_ROOT, Runner, Sample
from jobqueue.embedded.redis_server import RedisServer


def run_cycle(runner: Runner, adapter: Adapter, rep: int, settings: Sequence[str]) -> list[Sample]:
    """Enqueue then process at each worker setting, on an empty database each time."""
    samples = []
    for which in settings:
        runner.flush()
        if which == settings[0]:
            samples.append(runner.enqueue(adapter, rep, "one"))
        elif adapter.has_batch:
            samples.append(runner.enqueue(adapter, rep, "batch"))
        else:
            runner.enqueue(adapter, rep, "one")  # only to pre-load; one sample per repetition is kept
        samples.append(runner.process(adapter, rep, which))
    return samples


def describe(sample: Sample) -> str:
    """One progress line."""
    value = "FAILED" if sample.value is None else f"{sample.value:,.1f}"
    extra = ""
    if "lost" in sample.detail:
        extra = f" dup={sample.detail['duplicates']} lost={sample.detail['lost']}"
    if "commands" in sample.detail:
        extra += f" cmds/task={sample.detail['commands']:.1f} cpu_us/task={sample.detail['cpu_us']:.0f}"
    if sample.metric == "latency":
        extra += f" p99={sample.detail.get('p99_ms')}"
    return f"  r{sample.rep} {sample.system:9} {sample.metric:16} {value:>10}{extra}"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": f"{cpu} x {os.cpu_count()} (shared with other workloads)",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def docs_section(
    samples: Sequence[Sample], systems: Sequence[str], meta: dict[str, object], adapters: Sequence[Adapter]
) -> str:
    """The generated part of docs/benchmarks.md."""
    lines = [f"Measured {meta['date']} with `{meta['command']}`.", ""]
    lines += [f"- {k}: {v}" for k, v in meta["machine"].items()]  # type: ignore[attr-defined]
    lines += [f"- Redis {meta['redis']} (dedicated server, persistence off), load average {meta['load']}"]
    lines += [f"- {meta['tasks']} tasks per run, {meta['repeats']} repetitions, systems interleaved", ""]
    lines += ["| system | version | default worker | tuned worker |", "|---|---|---|---|"]
    versions: dict[str, str] = meta["versions"]  # type: ignore[assignment]
    for a in adapters:
        lines.append(f"| {a.name} | {versions[a.name]} | `{a.default.describe}` | `{a.tuned.describe}` |")
    lines += ["", "Medians of the repetitions, ± half the min-max range as % of the median, "
              "(ratio against the best peer of the same run):", ""]  # fmt: skip
    lines.append(markdown(table(samples, systems)))
    lat = latency_rows(samples, systems)
    if lat:
        lines += ["", f"Latency (task start - enqueue) at a steady {meta['latency_rate']} tasks/s, "
                  "worker kept running (tuned setting), median (min-max) over the repetitions:", "",
                  markdown(lat)]  # fmt: skip
    failed = [s for s in samples if not s.ok]
    if failed:
        lines += ["", "Failed runs (a task lost or run twice):", ""]
        lines += [f"- {s.system} {s.metric} r{s.rep}: lost {s.detail.get('lost')}, "
                  f"duplicates {s.detail.get('duplicates')}" for s in failed]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench``."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--systems", default=",".join(ADAPTERS), help="comma-separated")
    parser.add_argument("--tasks", type=int, default=3000, help="tasks per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", default="default,tuned", help="worker settings to run")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="0 skips the latency runs")
    parser.add_argument("--latency-rate", type=float, default=100.0)
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/<timestamp>")
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
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    adapters = [ADAPTERS[s] for s in systems]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    # Absolute: redis-server changes into its --dir, so a relative log path would point elsewhere.
    out: Path = (args.out or REPO_ROOT / "bench" / "results" / stamp).resolve()
    out.mkdir(parents=True, exist_ok=True)
    bins = bin_dirs(a.venv for a in adapters)

    load_start = os.getloadavg()
    server = RedisServer(out / "redis", appendonly=False).start()
    try:
        runner = Runner(server.url, out, bins, args.tasks)
        versions = {a.name: runner.version(a) for a in adapters}
        print(f"bench: redis {server.url}, {args.tasks} tasks/run, results in {out}", flush=True)
        samples: list[Sample] = []
        for rep in range(1, args.repeats + 1):
            # Rotate the order so no system always runs first (or right after the same neighbour).
            order = adapters[(rep - 1) % len(adapters) :] + adapters[: (rep - 1) % len(adapters)]
            for adapter in order:
                for sample in run_cycle(runner, adapter, rep, settings):
                    samples.append(sample)
                    print(describe(sample), flush=True)
        if args.latency_seconds > 0:
            for rep in range(1, args.repeats + 1):
                for adapter in adapters:
                    runner.flush()
                    sample = runner.latency(adapter, rep, args.latency_rate, args.latency_seconds)
                    samples.append(sample)
                    print(describe(sample), flush=True)
        redis_version = str(runner.redis.info("server")["redis_version"])
    finally:
        server.stop()

    meta: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line("bench", argv),
        "machine": machine(),
        "redis": redis_version,
        "load": f"{load_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end",
        "tasks": args.tasks,
        "repeats": args.repeats,
        "versions": versions,
        "latency_rate": args.latency_rate,
    }
    (out / "samples.json").write_text(
        json.dumps({"meta": meta, "samples": [asdict(s) for s in samples]}, indent=1)
    )
    print()
    print(console(table(samples, systems)))
    lat = latency_rows(samples, systems)
    if lat:
        print()
        print(console(lat))
    if not args.no_docs:
        args.docs.parent.mkdir(parents=True, exist_ok=True)
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, docs_section(samples, systems, meta, adapters)))
        figures = headlines.head_to_head(headline_medians(samples, systems))
        summary.publish(
            "head_to_head",
            "bench",
            argv,
            str(meta["load"]),
            figures,
            summary.directory_for(args.docs, args.summary_dir),
        )
        summary.write(args.docs, summary.directory_for(args.docs, args.summary_dir))
        print(f"\nwrote {args.docs}")
    failed = [s for s in samples if not s.ok]
    return 1 if failed else 0
