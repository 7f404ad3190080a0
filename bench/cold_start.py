"""Cold start: from a system's default worker command starting to its first task: ``python -m
bench.cold_start``.

Every scale-up pays it (a new pod, a supervisor adding a process). For each system and round: one task is
enqueued on the empty dedicated Redis, then the *default* worker command is started as a whole process
(its own session, as a user would run it) and the time from just before ``Popen`` to the task's recorded
start is taken. Systems are interleaved round by round (the order rotates) and the median is reported,
with the min-max range: on a shared 2-core machine single runs swing.

    python -m bench.cold_start --systems jobqueue,huey,dramatiq --rounds 5
    python -m bench.cold_start --systems jobqueue,huey,dramatiq,celery --extra thread="--pool thread"
    python -m bench.cold_start --systems jobqueue --extra thread="--pool thread"
    python -m bench.cold_start --systems jobqueue,huey --baseline /path/to/main/worker_image

``--baseline`` adds ``jobqueue`` from another checkout (a directory holding a ``jobqueue`` package, put
ahead of the installed one on PYTHONPATH) to the same rounds: a before / after on the same load.

The table is written into docs/benchmarks.md between the ``bench:cold-start`` markers, and the headline
figures saved for bench.summary, unless ``--no-docs``. Every run checks its one task ran exactly once.
"""

from __future__ import annotations

import argparse
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
from bench.peers_env import bin_dirs
from bench.report import command_line, markdown, measured_with, replace_results
from bench.runner import REPO_ROOT, Runner, stop_worker
from bench.runs import check, read_starts
from jobqueue.embedded.redis_server import RedisServer

# A worker that has not started its one task by then is broken: the run fails rather than hangs.
FIRST_TASK_TIMEOUT = 30.0
DOCS_MARKERS = ("<!-- bench:cold-start:start -->", "<!-- bench:cold-start:end -->")


def cold_start(
    runner: Runner, adapter: Adapter, setting: WorkerSetting, name: str, pythonpath: str | None = None
) -> float | None:
    """Seconds from starting the worker command to its first task, or None when it never started it.
    ``pythonpath``: a directory put first on the worker's PYTHONPATH (another jobqueue checkout)."""
    runner.flush()
    runs_file = runner.out_dir / f"{name}.runs"
    runs_file.unlink(missing_ok=True)
    runner._driver(adapter, ["one", "1"])
    argv = setting.argv(runner.bins[adapter.venv], runner.redis_url)
    log = runner.out_dir / f"{name}.log"
    env = runner._env(runs_file)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([pythonpath, env["PYTHONPATH"]])
    with log.open("ab") as log_file:
        started = time.time()
        worker = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    first: float | None = None
    try:
        deadline = time.monotonic() + FIRST_TASK_TIMEOUT
        while time.monotonic() < deadline:
            starts = read_starts(runs_file) if runs_file.exists() else []
            if starts:
                first = starts[0][1] - started
                break
            if worker.poll() is not None:
                return None
            time.sleep(0.002)
    finally:
        stop_worker(worker, adapter.stop_timeout)
    # Started, then stopped: the one task must have run once, not twice (a start counted is not enough).
    return first if first is not None and check(runs_file, range(1)).ok else None


def table(entries: Sequence[tuple[str, WorkerSetting]], results: dict[str, list[float | None]]) -> str:
    """Per command: median ms (min-max), the ratio to the fastest peer's median, failed runs."""
    medians = {label: _median_ms(results[label]) for label, _ in entries}
    peers = [m for label, m in medians.items() if m is not None and not label.startswith("jobqueue")]
    rows = [["system", "command", "cold start ms, median (min-max)", "vs fastest peer", "failed"]]
    for label, setting in entries:
        ok = [s * 1000 for s in results[label] if s is not None]
        shown = f"{statistics.median(ok):,.0f} ({min(ok):,.0f}-{max(ok):,.0f})" if ok else "n/a"
        median = medians[label]
        ratio = f"{median / min(peers):.2f}x" if peers and median is not None else "-"
        rows.append([label, f"`{setting.describe}`", shown, ratio, str(len(results[label]) - len(ok))])
    return markdown(rows)


def _median_ms(values: Sequence[float | None]) -> float | None:
    ok = [v * 1000 for v in values if v is not None]
    return statistics.median(ok) if ok else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.cold_start``."""
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__)
    parser.add_argument("--systems", default="jobqueue,huey,dramatiq,taskiq,arq,celery")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--extra", action="append", default=[],
        help="label=\"jobqueue worker flags\": another jobqueue command measured alongside (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", default=None, help="a directory holding another jobqueue package, measured alongside"
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "cold-start")
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
    entries: list[tuple[str, Adapter, WorkerSetting, str | None]] = [
        (s, ADAPTERS[s], ADAPTERS[s].default, None) for s in systems
    ]
    for extra in args.extra:
        label, _, flags = extra.partition("=")
        entries.append((f"jobqueue {label}", ADAPTERS["jobqueue"], _jobqueue_with(flags.split()), None))
    if args.baseline:
        baseline = str(Path(args.baseline).resolve())
        entries.append(("jobqueue baseline", ADAPTERS["jobqueue"], ADAPTERS["jobqueue"].default, baseline))
    server = RedisServer(out / "redis", appendonly=False).start()
    results: dict[str, list[float | None]] = {label: [] for label, _, _, _ in entries}
    load_start = os.getloadavg()[0]
    try:
        runner = Runner(server.url, out, bins, 1)
        for rnd in range(args.rounds):
            order = entries[rnd % len(entries) :] + entries[: rnd % len(entries)]
            for label, adapter, setting, pythonpath in order:
                name = f"{label.replace(' ', '_')}-r{rnd}"
                seconds = cold_start(runner, adapter, setting, name, pythonpath)
                results[label].append(seconds)
                shown = "FAILED" if seconds is None else f"{seconds * 1000:.0f} ms"
                print(f"round {rnd + 1} {label}: {shown}", flush=True)
    finally:
        server.stop()
    load = f"{load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    command = command_line("bench.cold_start", argv)
    section = (
        measured_with(command) + f", load average "
        f"{load}; {args.rounds} interleaved rounds (order rotated), one task each, from starting the "
        "worker command to the task's start; medians (min-max), every run checked exactly-once.\n\n"
        + table([(label, setting) for label, _, setting, _ in entries], results)
    )
    print("\n" + section)
    if not args.no_docs:
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, section, DOCS_MARKERS))
        # The peers and jobqueue's default command only: extras and a baseline are not what a user runs.
        by_system = {name: _median_ms(results[name]) for name in systems}
        figures = headlines.cold_start({n: None if ms is None else ms / 1000 for n, ms in by_system.items()})
        summary.publish(
            "cold_start",
            "bench.cold_start",
            argv,
            load,
            figures,
            summary.directory_for(args.docs, args.summary_dir),
        )
    return 0 if all(s is not None for v in results.values() for s in v) else 1


def _jobqueue_with(flags: list[str]) -> WorkerSetting:
    """``jobqueue worker`` on the bench app with these flags (e.g. ``--pool thread``)."""
    default = ADAPTERS["jobqueue"].default

    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        base = default.argv(bin_dir, redis_url)
        # The default's own --pool / --concurrency are dropped: the extra flags say what to run.
        cut = base.index("--pool")
        return [*base[:cut], *flags]

    return WorkerSetting("jobqueue worker " + " ".join(flags), argv)


if __name__ == "__main__":
    sys.exit(main())
