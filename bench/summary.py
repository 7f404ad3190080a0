"""The page's opening table, composed from every step's headline figures: ``python -m bench.summary``.

Each step of ``make bench`` that feeds the summary saves its headline figures (built by its pure function
in bench/headlines.py) as ``bench/results/summary/<step>.json`` when it writes its own table; this module
reads those files and writes ONE table between the ``bench:summary`` markers of docs/benchmarks.md: one
row per workload, jobqueue against the best peer of the same run, the ratio, the issue's target, whether
it is met and the date of the run the row came from. A workload no step has measured yet says so; a row
from an older run keeps that run's date, so a stale figure is visible as such.

    python -m bench.summary
    python -m bench.summary --summary-dir /tmp/summary --docs /tmp/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.report import SUMMARY_END, SUMMARY_START, command_line, markdown, replace_results
from bench.runner import REPO_ROOT

SUMMARY_DIR = REPO_ROOT / "bench" / "results" / "summary"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
TIMES_FILE = "step-times.json"  # written by bench/steptime.py, one entry per step of `make bench`
STEPS_MARKERS = ("<!-- bench:steps:start -->", "<!-- bench:steps:end -->")

# (key, what the row says, the section of docs/benchmarks.md it comes from), in the page's order.
WORKLOADS: tuple[tuple[str, str, str], ...] = (
    ("enqueue_one", "enqueue 1-by-1", "head-to-head-no-op-tasks"),
    ("enqueue_batch", "batch enqueue", "head-to-head-no-op-tasks"),
    ("process_default", "processing, default worker command", "head-to-head-no-op-tasks"),
    ("process_best", "processing, best setting", "head-to-head-no-op-tasks"),
    ("latency_p50", "latency p50 at 100/s (tuned workers)", "head-to-head-no-op-tasks"),
    ("latency_p99", "latency p99 at 100/s (tuned workers)", "head-to-head-no-op-tasks"),
    ("default_p50", "latency p50 at 100/s (default commands)", "latency-under-load"),
    ("default_p99", "latency p99 at 100/s (default commands)", "latency-under-load"),
    ("load50_p99", "latency p99 at 50% of the maximum", "latency-under-load"),
    ("concurrent", "100 concurrent producers", "concurrent-producers"),
    ("io_sleep", "I/O-bound: 50 ms asyncio.sleep", "io-bound-tasks"),
    ("io_http", "I/O-bound: 50 ms HTTP GET", "io-bound-tasks"),
    ("cpu_bound", "CPU-bound: 2 ms of CPU per task", "cpu-bound-tasks"),
    ("cold_start", "cold start, default worker command", "cold-start"),
    ("scrape", "/metrics scrape at the most queues", "cost-as-the-system-grows"),
    ("page", "a page of queues at the most queues", "cost-as-the-system-grows"),
    ("record_cpu", "record: recorder CPU per event", "the-records-cost"),
    ("record_share", "record: share of Redis command time", "the-records-cost"),
    ("record_catch_up", "record: catch-up vs the hot path's maximum", "the-records-cost"),
    ("record_lag", "record: lag under sustained maximum load", "the-records-cost"),
)
HEADER = ["workload", "jobqueue", "best peer", "peer's figure", "jobqueue vs peer", "target", "met", "run"]


def headline(
    key: str,
    jobqueue: float | None,
    unit: str,
    target: str,
    met: bool | None,
    peer: str | None = None,
    peer_value: float | None = None,
    lower_is_better: bool = False,
) -> dict[str, Any]:
    """One headline figure as saved in a step's JSON (``unit``: "/s", "ms", "s", "µs", "%" or "x")."""
    return {
        "key": key, "jobqueue": jobqueue, "unit": unit, "target": target, "met": met, "peer": peer,
        "peer_value": peer_value, "lower_is_better": lower_is_better,
    }  # fmt: skip


def step_record(step: str, command: str, load: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What one step saves: when, how and under what load it ran, and its headline rows."""
    return {
        "step": step,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "load": load,
        "rows": list(rows),
    }


def save(record: Mapping[str, Any], directory: Path = SUMMARY_DIR) -> Path:
    """Write ``<directory>/<step>.json`` (replacing that step's previous figures, and only those)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record['step']}.json"
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return path


def load(directory: Path) -> list[dict[str, Any]]:
    """Every step's saved record, in file-name order; a file that is not a step's record is skipped
    (a half-written file from an interrupted run must not stop the summary)."""
    records = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            print(f"bench.summary: skipped unreadable {path}", file=sys.stderr)
            continue
        if not (isinstance(record, dict) and isinstance(record.get("rows"), list)):
            continue
        if not all(isinstance(record.get(f), str) for f in ("step", "date", "command", "load")):
            continue
        record["rows"] = [r for r in record["rows"] if _valid_row(r)]
        records.append(record)
    return records


def _number(value: object) -> bool:
    """A figure the table can print: None, or a finite int or float (not a bool, not 10**400)."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _valid_row(row: object) -> bool:
    """A headline row as ``headline()`` makes it; anything else (an edited or foreign file) is left out."""
    if not isinstance(row, dict):
        return False
    return (
        isinstance(row.get("key"), str)
        and _number(row.get("jobqueue"))
        and _number(row.get("peer_value"))
        and isinstance(row.get("unit"), str)
        and isinstance(row.get("target"), str)
        and row.get("met") in (True, False, None)
        and (row.get("peer") is None or isinstance(row.get("peer"), str))
        and isinstance(row.get("lower_is_better"), bool)
    )


def figure(value: float | None, unit: str) -> str:
    """A figure with its unit, rounded as the tables below round it."""
    if value is None:
        return "n/a"
    if unit == "/s":
        return f"{value:,.0f}/s"
    if unit in ("ms", "s"):
        return f"{value:,.2f} {unit}"
    if unit == "µs":
        return f"{value:,.1f} µs"
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:.2f}{unit}"


def rows(records: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """The summary table (header first): one row per workload of ``WORKLOADS``; when two records carry
    the same workload, the newer one wins."""
    found: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
    for record in sorted(records, key=lambda r: str(r.get("date", ""))):
        for row in record["rows"]:
            found[str(row.get("key"))] = (row, record)
    out = [HEADER]
    for key, title, anchor in WORKLOADS:
        label = f"[{title}](#{anchor})"
        if key not in found:
            out.append([label, "not measured yet", "", "", "", "", "", ""])
            continue
        row, record = found[key]
        ours, theirs, unit = row["jobqueue"], row["peer_value"], row["unit"]
        ratio = ""
        if ours is not None and theirs:
            ratio = f"{ours / theirs:.2f}x" + (" (lower is better)" if row["lower_is_better"] else "")
        met = {True: "yes", False: "**no**", None: "n/a"}[row["met"]]
        out.append([
            label, figure(ours, unit), row["peer"] or "-", "-" if theirs is None else figure(theirs, unit),
            ratio or "-", row["target"], met, f"{record['date']} (`{record['step']}`)",
        ])  # fmt: skip
    return out


def section(records: Sequence[Mapping[str, Any]]) -> str:
    """The generated text between the summary markers."""
    runs = [f"- `{r['step']}`: `{r.get('command', '?')}`, {r['date']}, load average {r.get('load', '?')}"
            for r in sorted(records, key=lambda r: str(r.get("step")))]  # fmt: skip
    return (
        "Composed by `python -m bench.summary` (the last step of `make bench`) from each step's latest "
        "run; each row links to its section, the run column says which run its figures came from.\n\n"
        + markdown(rows(records))
        + "\n\nThe runs:\n\n"
        + ("\n".join(runs) if runs else "- none yet")
        + "\n"
    )


def read_times(directory: Path) -> dict[str, dict[str, Any]]:
    """Command -> {"seconds", "date", "exit", "order"} of its latest run; empty when none is readable."""
    try:
        times = json.loads((directory / TIMES_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(times, dict):
        return {}
    return {
        c: t for c, t in times.items() if isinstance(t, dict) and isinstance(t.get("seconds"), int | float)
    }


def steps_section(times: Mapping[str, Mapping[str, Any]]) -> str:
    """How long each step of the latest ``make bench`` took, in the order it ran them."""
    if not times:
        return "Not timed yet: `make bench` times each step (bench/steptime.py) and lists them here.\n"
    rows = [["step", "took", "run"]]
    for command, t in sorted(times.items(), key=lambda item: int(item[1].get("order", 0))):
        seconds = float(t["seconds"])
        took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
        if t.get("exit"):
            took += f" (failed, exit {t['exit']})"
        rows.append([f"`{command}`", took, str(t.get("date", ""))])
    return "What each step of the latest `make bench` took (bench/steptime.py):\n\n" + markdown(rows) + "\n"


def write(docs: Path, directory: Path) -> str:
    """Compose the summary and the step times from ``directory`` and put them between their markers."""
    text = section(load(directory))
    current = docs.read_text() if docs.exists() else ""
    current = replace_results(current, text, (SUMMARY_START, SUMMARY_END))
    if STEPS_MARKERS[0] in current:  # a page without the "How to run" table gets none appended
        current = replace_results(current, steps_section(read_times(directory)), STEPS_MARKERS)
    docs.write_text(current)
    return text


def directory_for(docs: Path, given: Path | None) -> Path:
    """Where a step saves its headline figures: ``given``, else beside the page it wrote into: the
    project's page feeds bench/results/summary, a copy elsewhere (a test's) a ``summary`` folder next to
    it, so a tiny run never replaces the figures of a real one."""
    if given is not None:
        return given
    return SUMMARY_DIR if docs.resolve() == DOCS.resolve() else docs.parent / "summary"


def publish(
    step: str,
    module: str,
    argv: Sequence[str] | None,
    load_text: str,
    headlines: Sequence[Mapping[str, Any]],
    directory: Path,
) -> Path:
    """Save a step's headline figures; ``argv`` as the step was called (None: this process's)."""
    command = command_line(module, argv)
    return save(step_record(step, command, load_text, headlines), directory)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.summary``."""
    parser = argparse.ArgumentParser(prog="python -m bench.summary", description=__doc__)
    parser.add_argument("--summary-dir", type=Path, default=None, help="default: beside --docs")
    parser.add_argument("--docs", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    text = write(args.docs, directory_for(args.docs, args.summary_dir))
    print(text)
    print(f"wrote {args.docs} (load average now {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
