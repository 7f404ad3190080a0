"""CPU-bound tasks side by side: ``python -m bench.cpu_bound``.

Every system runs the benchmark task with ``BENCH_BURN_MS`` set, so each task burns that much CPU (thread
CPU time, bench/record.py) after recording its start; on 2 cores at 2 ms the bound is 1,000 tasks/s. Each
system runs with two worker processes (one per core) in its own usual way; tasks are pre-loaded, the rate
is taken from the first task start to the last (start-up not counted) and every run is checked
exactly-once. Systems are interleaved round by round; medians are reported.

    python -m bench.cpu_bound --systems jobqueue,huey,dramatiq,celery --tasks 3000 --rounds 3

The table is written into docs/benchmarks.md between the ``bench:cpu-bound`` markers, and the headline
figures saved for bench.summary (jobqueue's process pool, the pool that can hard-kill a task, against the
peers), unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from bench import headlines, summary
from bench.adapters import ADAPTERS
from bench.adapters.base import WorkerSetting
from bench.adapters.jobqueue_adapter import worker_setting
from bench.peers_env import bin_dirs
from bench.record import BURN_MS_ENV
from bench.report import command_line, markdown, measured_with, replace_results
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
DOCS_MARKERS = ("<!-- bench:cpu-bound:start -->", "<!-- bench:cpu-bound:end -->")


def _median(values: Sequence[float | None]) -> float | None:
    ok = [v for v in values if v is not None]
    return statistics.median(ok) if ok else None


def table(entries: Sequence[tuple[str, str, WorkerSetting]], rates: dict[str, list[float | None]],
          bound_rate: float) -> str:  # fmt: skip
    """Per command: tasks/s median (min-max), its share of the bound, the ratio to the best peer's
    median, failed runs."""
    peers = [m for (s, label, _) in entries if s != "jobqueue" and (m := _median(rates[f"{s} {label}"]))]
    rows = [["system", "command", "tasks/s, median (min-max)", "of the bound", "vs best peer", "failed"]]
    for system, label, setting in entries:
        got = rates[f"{system} {label}"]
        ok = [r for r in got if r is not None]
        median = _median(got)
        shown = f"{median:,.0f} ({min(ok):,.0f}-{max(ok):,.0f})" if median is not None else "n/a"
        share = f"{median / bound_rate:.0%}" if median is not None else "n/a"
        ratio = f"{median / max(peers):.2f}x" if median is not None and peers else "-"
        rows.append([system, f"`{setting.describe}`", shown, share, ratio, str(len(got) - len(ok))])
    return markdown(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.cpu_bound``."""
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_bound", description=__doc__)
    parser.add_argument("--systems", default="jobqueue,huey,dramatiq,celery")
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burn-ms", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "cpu-bound")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument(
        "--summary-dir", type=Path, default=None, help="headline figures (default: beside --docs)"
    )
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
    load = f"{load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    command = command_line("bench.cpu_bound", argv)
    section = (
        measured_with(command) + f", load average "
        f"{load}; {args.tasks:,} pre-loaded tasks of {args.burn_ms:g} ms CPU per run, bound "
        f"{bound_rate:,.0f} tasks/s on {bound} cores; medians (min-max) of {args.rounds} interleaved "
        "round(s), every run checked exactly-once (a run that lost or repeated a task counts as failed).\n\n"
        + table(entries, rates, bound_rate)
    )
    print("\n" + section)
    if not args.no_docs:
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, section, DOCS_MARKERS))
        # jobqueue's process pool is the figure the target is about: the pool that can hard-kill a task.
        medians = {s: _median(rates[f"{s} process"]) for s in systems}
        figures = headlines.cpu_bound(medians, bound_rate)
        summary.publish(
            "cpu_bound",
            "bench.cpu_bound",
            argv,
            load,
            figures,
            summary.directory_for(args.docs, args.summary_dir),
        )
    return 0 if all(r is not None for v in rates.values() for r in v) else 1


if __name__ == "__main__":
    sys.exit(main())
