"""I/O-bound tasks side by side: ``python -m bench.io_bound``.

Every task records its start, then awaits 50 ms (bench/io_wait.py): ``sleep`` (``asyncio.sleep``) or
``http`` (a real HTTP GET to a local server, started here in its own process, that answers after 50 ms;
the same stdlib keep-alive client in every system). One worker process per system with 1,000 tasks in
flight: ``jobqueue worker --pool async --concurrency 1000``, ``taskiq worker --workers 1
--max-async-tasks 1000``, arq with ``max_jobs = 1000``. Tasks are pre-loaded; the rate is taken from the
first task start to the last (start-up not counted); every run is checked exactly-once. Systems are
interleaved round by round on one Redis; medians are reported with jobqueue's ratio to the best peer.

The table is written into docs/benchmarks.md between the ``bench:io`` markers unless ``--no-docs``.

    python -m bench.io_bound --tasks 10000 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import SecretStr

from bench import headlines, summary
from bench.adapters import ADAPTERS
from bench.adapters.base import WorkerSetting
from bench.adapters.jobqueue_adapter import worker_setting
from bench.io_wait import HTTP_PORT_ENV, IO_KIND_ENV
from bench.peers_env import ensure_venv, main_bin_dir
from bench.report import command_line, markdown, measured_with, replace_results
from bench.runner import REPO_ROOT, Runner
from jobqueue import Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.embedded.redis_server import RedisServer

KINDS = ("sleep", "http")
DOCS_MARKERS = ("<!-- bench:io:start -->", "<!-- bench:io:end -->")
IN_FLIGHT = 1000


def _cmd(describe: str, build: Sequence[str]) -> WorkerSetting:
    """A peer's worker command: ``build[0]`` is the executable in the system's venv."""

    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        return [str(bin_dir / build[0]), *build[1:]]

    return WorkerSetting(describe, argv)


# One worker process each, 1,000 tasks in flight in its event loop.
SETTINGS: dict[str, WorkerSetting] = {
    "jobqueue": worker_setting("async", IN_FLIGHT),
    "taskiq": _cmd(f"taskiq worker --workers 1 --max-async-tasks {IN_FLIGHT}",
                   ["taskiq", "worker", "bench.tasks.taskiq_tasks:broker", "--log-level", "WARNING",
                    "--workers", "1", "--max-async-tasks", str(IN_FLIGHT)]),
    "arq": _cmd(f"arq bench.tasks.arq_tasks.IoWorkerSettings (max_jobs = {IN_FLIGHT})",
                ["arq", "bench.tasks.arq_tasks.IoWorkerSettings"]),
}  # fmt: skip


@contextlib.contextmanager
def delay_server() -> Iterator[int]:
    """The 50 ms HTTP server (bench.io_wait) in its own process; yields its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.io_wait", "--port", "0"], cwd=REPO_ROOT, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def load_jobqueue(redis_url: str, tasks: int) -> None:
    """Pre-load jobqueue's async task (``anoop``, which awaits io_wait) in batches."""
    client = Client(Settings(redis_url=SecretStr(redis_url)))
    try:
        for first in range(0, tasks, 1000):
            seqs = range(first, min(tasks, first + 1000))
            client.enqueue_many([make_request("anoop", [s], queue="bench") for s in seqs])
    finally:
        client.close()


def measure(
    systems: Sequence[str], kinds: Sequence[str], tasks: int, rounds: int, out: Path
) -> dict[tuple[str, str], list[float | None]]:
    """Interleaved rounds; tasks/s per (kind, system), None for a run that lost or repeated a task."""
    bins = {"main": main_bin_dir()}
    for venv in sorted({ADAPTERS[s].venv for s in systems} - {"main"}):
        bins[venv] = ensure_venv(venv)
    rates: dict[tuple[str, str], list[float | None]] = {(k, s): [] for k in kinds for s in systems}
    server = RedisServer(out / "redis", appendonly=False).start()
    try:
        with delay_server() as port:
            os.environ[HTTP_PORT_ENV] = str(port)  # inherited by every worker the runner starts
            runner = Runner(server.url, out, bins, tasks)
            for rnd in range(rounds):
                for kind in kinds:
                    os.environ[IO_KIND_ENV] = kind
                    order = list(systems[rnd % len(systems) :]) + list(systems[: rnd % len(systems)])
                    for system in order:
                        adapter = dataclasses.replace(ADAPTERS[system], default=SETTINGS[system])
                        runner.flush()
                        if system == "jobqueue":
                            load_jobqueue(server.url, tasks)
                        else:
                            runner.enqueue(adapter, rnd, "one")
                        sample = runner.process(adapter, rnd, "default")
                        rates[(kind, system)].append(sample.value)
                        shown = "FAILED" if sample.value is None else f"{sample.value:,.0f}/s"
                        print(f"round {rnd + 1} {kind} {system}: {shown}", flush=True)
    finally:
        server.stop()
        for name in (IO_KIND_ENV, HTTP_PORT_ENV):  # the caller's later workers (a test session) wait not
            os.environ.pop(name, None)
    return rates


def table(rates: dict[tuple[str, str], list[float | None]], systems: Sequence[str]) -> str:
    """One row per kind of wait: each system's median tasks/s (min-max) and jobqueue / best peer."""
    rows = [["task awaits 50 ms of", *systems, "jobqueue vs best peer"]]
    for kind in dict.fromkeys(k for k, _ in rates):
        cells, medians = [], {}
        for system in systems:
            got = rates[(kind, system)]
            ok = [r for r in got if r is not None]
            failed = len(got) - len(ok)
            if ok:
                medians[system] = statistics.median(ok)
                cell = f"{medians[system]:,.0f} ({min(ok):,.0f}-{max(ok):,.0f})"
            else:
                cell = "n/a"
            cells.append(cell + (f", {failed} FAILED" if failed else ""))
        peers = [medians[s] for s in systems if s != "jobqueue" and s in medians]
        ratio = f"{medians['jobqueue'] / max(peers):.2f}x" if peers and "jobqueue" in medians else "n/a"
        label = "asyncio.sleep" if kind == "sleep" else "an HTTP GET to a local server"
        rows.append([label, *cells, ratio])
    return markdown(rows)


def _median(values: Sequence[float | None]) -> float | None:
    ok = [v for v in values if v is not None]
    return statistics.median(ok) if ok else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.io_bound``."""
    parser = argparse.ArgumentParser(prog="python -m bench.io_bound", description=__doc__)
    parser.add_argument("--systems", default="jobqueue,taskiq,arq")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "io-bound")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument(
        "--summary-dir", type=Path, default=None, help="headline figures (default: beside --docs)"
    )
    args = parser.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if unknown := [s for s in systems if s not in SETTINGS] + [k for k in kinds if k not in KINDS]:
        parser.error(f"unknown system or kind: {', '.join(unknown)}")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    rates = measure(systems, kinds, args.tasks, args.rounds, out)
    load_end = os.getloadavg()[0]
    commands = "; ".join(f"`{SETTINGS[s].describe}`" for s in systems)
    command = command_line("bench.io_bound", argv)
    section = (
        measured_with(command) + f", load average "
        f"{load_start:.1f} at start, {load_end:.1f} at end. Tasks/s, median (min-max) of {args.rounds} "
        f"interleaved rounds of {args.tasks:,} tasks, one worker process each: {commands}.\n\n"
        + table(rates, systems)
    )
    print("\n" + section)
    if not args.no_docs:
        args.docs.write_text(replace_results(args.docs.read_text(), section, DOCS_MARKERS))
        medians = {k: {s: _median(rates[(k, s)]) for s in systems} for k in kinds}
        load = f"{load_start:.1f} at start, {load_end:.1f} at end"
        summary.publish(
            "io_bound",
            "bench.io_bound",
            argv,
            load,
            headlines.io_bound(medians),
            summary.directory_for(args.docs, args.summary_dir),
        )
    return 0 if all(r is not None for v in rates.values() for r in v) else 1


if __name__ == "__main__":
    sys.exit(main())
