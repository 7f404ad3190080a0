"""Medians, spreads and ratios against the best peer, as a console table and as docs/benchmarks.md."""

from __future__ import annotations

import datetime as dt
import shlex
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from bench.runner import Sample

PROJECT = "jobqueue"
THROUGHPUT_METRICS = ("enqueue_one", "enqueue_batch", "process_default", "process_tuned", "process_best")
TITLES = {
    "enqueue_one": "enqueue 1-by-1 /s",
    "enqueue_batch": "batch enqueue /s",
    "process_default": "processing /s (default)",
    "process_tuned": "processing /s (tuned)",
    "process_best": "processing /s (best of the two)",
}
DOCS_START = "<!-- bench:results:start -->"
DOCS_END = "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Summary:
    """Median and spread of one figure over the repetitions."""

    median: float | None
    low: float | None
    high: float | None
    runs: int
    failed: int

    def spread_pct(self) -> float | None:
        """(max - min) / median, in percent."""
        if self.median is None or self.low is None or self.high is None or self.median == 0:
            return None
        return (self.high - self.low) / self.median * 100


def summarize(samples: Sequence[Sample], system: str, metric: str, key: str | None = None) -> Summary:
    """Median over a system's runs of one metric (``key``: a detail field instead of the value).

    ``process_best`` is whichever worker setting of the system has the higher median.
    """
    if metric == "process_best":
        both = [summarize(samples, system, m, key) for m in ("process_default", "process_tuned")]
        return max(both, key=lambda x: -1.0 if x.median is None else x.median)
    rows = [s for s in samples if s.system == system and s.metric == metric]
    values = [s.value if key is None else s.detail.get(key) for s in rows if s.ok]
    good = [float(v) for v in values if v is not None]
    failed = sum(1 for s in rows if not s.ok)
    if not good:
        return Summary(None, None, None, len(rows), failed)
    return Summary(statistics.median(good), min(good), max(good), len(rows), failed)


def best_peer(samples: Sequence[Sample], systems: Sequence[str], metric: str) -> tuple[str, float] | None:
    """The peer (not jobqueue) with the highest median for a throughput metric."""
    medians = [(s, summarize(samples, s, metric).median) for s in systems if s != PROJECT]
    valid = [(s, m) for s, m in medians if m is not None]
    return max(valid, key=lambda x: x[1]) if valid else None


def _fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def throughput_cell(summary: Summary, best: tuple[str, float] | None) -> str:
    """'12,345 ±4% (2.10x)': median, spread and ratio against the best peer."""
    if summary.runs == 0:
        return "n/a"
    if summary.median is None:
        return f"FAILED ({summary.failed}/{summary.runs})"
    spread = summary.spread_pct()
    text = _fmt(summary.median)
    if spread is not None and summary.runs > 1:
        text += f" ±{spread / 2:.0f}%"
    if best is not None:
        text += f" ({summary.median / best[1]:.2f}x)"
    if summary.failed:
        text += f" [{summary.failed} failed]"
    return text


def table(samples: Sequence[Sample], systems: Sequence[str]) -> list[list[str]]:
    """Rows of the main table (header first)."""
    header = ["system", *(TITLES[m] for m in THROUGHPUT_METRICS),
              "cmds/task enq + proc", "scripts/task enq + proc", "Redis CPU µs/task enq + proc",
              "dup / lost"]  # fmt: skip
    rows = [header]
    bests = {m: best_peer(samples, systems, m) for m in THROUGHPUT_METRICS}
    for system in systems:
        row = [system]
        for metric in THROUGHPUT_METRICS:
            row.append(throughput_cell(summarize(samples, system, metric), bests[metric]))

        def pair(key: str, digits: int, system: str = system) -> str:
            enq = summarize(samples, system, "enqueue_one", key).median
            proc = summarize(samples, system, "process_tuned", key).median
            return f"{_fmt(enq, digits)} + {_fmt(proc, digits)}"

        row += [pair("commands", 1), pair("script_calls", 1), pair("cpu_us", 0)]
        runs = [s for s in samples if s.system == system and s.metric.startswith("process")]
        dup = sum(int(s.detail.get("duplicates", 0)) for s in runs)
        lost = sum(int(s.detail.get("lost", 0)) for s in runs)
        row.append(f"{dup} / {lost}")
        rows.append(row)
    return rows


def latency_rows(samples: Sequence[Sample], systems: Sequence[str]) -> list[list[str]]:
    """Latency table rows (header first); empty when no latency run was made. Lower is better, so the
    ratios are against the peer with the lowest median."""
    if not any(s.metric == "latency" for s in samples):
        return []
    rows = [["system", "p50 ms", "p50 vs best peer", "p99 ms", "p99 vs best peer", "runs (failed)"]]
    best = {key: _lowest_peer(samples, systems, key) for key in ("p50_ms", "p99_ms")}
    for system in systems:
        cells = [system]
        for key in ("p50_ms", "p99_ms"):
            s = summarize(samples, system, "latency", key)
            cells.append(f"{_fmt(s.median, 2)} ({_fmt(s.low, 2)}-{_fmt(s.high, 2)})")
            low = best[key]
            cells.append("—" if s.median is None or not low else f"{s.median / low[1]:.2f}x ({low[0]})")
        runs = summarize(samples, system, "latency", "p50_ms")
        if runs.runs:
            rows.append([*cells, f"{runs.runs} ({runs.failed})"])
    return rows


def _lowest_peer(samples: Sequence[Sample], systems: Sequence[str], key: str) -> tuple[str, float] | None:
    medians = [(s, summarize(samples, s, "latency", key).median) for s in systems if s != PROJECT]
    valid = [(s, m) for s, m in medians if m]
    return min(valid, key=lambda x: x[1]) if valid else None


def markdown(rows: list[list[str]]) -> str:
    """A GitHub markdown table."""
    if not rows:
        return ""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def console(rows: list[list[str]]) -> str:
    """A plain aligned table for the terminal."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)


def replace_results(document: str, section: str, markers: tuple[str, str] = (DOCS_START, DOCS_END)) -> str:
    """Put ``section`` between a pair of results markers of docs/benchmarks.md (appended when absent)."""
    start, end = markers
    block = f"{start}\n{section.rstrip()}\n{end}"
    if start in document and end in document:
        head, _, rest = document.partition(start)
        _, _, tail = rest.partition(end)
        return head + block + tail
    return document.rstrip() + "\n\n" + block + "\n"


SUMMARY_START = "<!-- bench:summary:start -->"
SUMMARY_END = "<!-- bench:summary:end -->"


def headline_medians(samples: Sequence[Sample], systems: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """``[metric][system]`` medians of the figures the summary takes from this run (bench/headlines.py):
    the throughput metrics, and p50_ms / p99_ms of the latency runs."""
    out = {m: {s: summarize(samples, s, m).median for s in systems} for m in THROUGHPUT_METRICS}
    for key in ("p50_ms", "p99_ms"):
        out[key] = {s: summarize(samples, s, "latency", key).median for s in systems}
    return out


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command a step was run with, as written on the page (``argv`` None: this process's own)."""
    return (f"python -m {module} " + shlex.join(argv if argv is not None else sys.argv[1:])).strip()


def measured_with(command: str) -> str:
    """The opening of a generated table's provenance line: when, and with which command."""
    return f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{command}`"
