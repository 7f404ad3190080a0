"""Each bench step's headline figures for the summary (bench/summary.py): one pure function per step,
from the numbers the step already computed to the rows it saves. The targets are issue 8's and issue 21's
(docs/benchmarks.md, "What the targets are")."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from bench.summary import headline

PROJECT = "jobqueue"

Row = dict[str, Any]


def _median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def _best(medians: Mapping[str, float | None], lower: bool = False) -> tuple[str | None, float | None]:
    """The peer (not jobqueue) with the best median: the highest, or the lowest when ``lower``."""
    peers = [(name, value) for name, value in medians.items() if name != PROJECT and value is not None]
    if not peers:
        return None, None
    return (min if lower else max)(peers, key=lambda p: p[1])


def head_to_head(medians: Mapping[str, Mapping[str, float | None]]) -> list[Row]:
    """``python -m bench``: ``medians[metric][system]`` for enqueue_one, enqueue_batch,
    process_default, process_best, p50_ms, p99_ms (latency at 100/s, tuned workers)."""
    out = []
    throughput = (
        ("enqueue_one", "≥ 0.85x the best peer (within 15%)", 0.85),
        ("enqueue_batch", "≥ 50,000/s", None),
        ("process_default", "-", None),
        ("process_best", "≥ 3x the best peer", 3.0),
    )
    for metric, target, factor in throughput:
        ours = medians.get(metric, {}).get(PROJECT)
        peer, theirs = _best(medians.get(metric, {}))
        met: bool | None = None
        if ours is not None and factor is not None and theirs:
            met = ours >= factor * theirs
        elif ours is not None and metric == "enqueue_batch":
            met = ours >= 50_000
        out.append(headline(metric, ours, "/s", target, met, peer, theirs))
    for key, bound in (("p50_ms", 1.0), ("p99_ms", 2.5)):
        ours = medians.get(key, {}).get(PROJECT)
        peer, theirs = _best(medians.get(key, {}), lower=True)
        met = None if ours is None else ours <= bound
        name = "latency_p50" if key == "p50_ms" else "latency_p99"
        out.append(headline(name, ours, "ms", f"≤ {bound:g} ms", met, peer, theirs, lower_is_better=True))
    return out


def latency_load(p50_100: Mapping[str, float | None], p99_100: Mapping[str, float | None],
                 p99_50: Mapping[str, float | None]) -> list[Row]:  # fmt: skip
    """``bench.latency_load``: per system, the median p50 / p99 at 100/s and p99 at 50% of its maximum
    (default worker commands)."""
    out = []
    for key, values in (("default_p50", p50_100), ("default_p99", p99_100)):
        ours = values.get(PROJECT)
        peer, theirs = _best(values, lower=True)
        met = None if ours is None or theirs is None else ours <= theirs
        out.append(headline(key, ours, "ms", "≤ the best peer", met, peer, theirs, lower_is_better=True))
    ours = p99_50.get(PROJECT)
    peer, theirs = _best(p99_50, lower=True)
    met = None if ours is None else ours <= 5.0
    out.append(headline("load50_p99", ours, "ms", "≤ 5 ms", met, peer, theirs, lower_is_better=True))
    return out


def concurrent_enqueue(rates: Mapping[str, float | None]) -> list[Row]:
    """``bench.concurrent_enqueue``: median enqueues/s per variant (jobqueue-async: 100 coroutines;
    the one-by-one baseline is the faster of jobqueue's two one-by-one variants)."""
    ours = rates.get("jobqueue-async")
    peers = {
        v.split("-")[0]: r for v, r in rates.items() if not v.startswith(PROJECT) and not v.endswith("-one")
    }
    peer, theirs = _best(peers)
    alone = [r for v, r in rates.items() if v in ("jobqueue-one", "jobqueue-async-one") and r is not None]
    met: bool | None = None
    if ours is not None and theirs and alone:
        met = ours >= 1.5 * theirs and ours >= 5 * max(alone)
    target = "≥ 1.5x the best peer's and ≥ 5x one-by-one"
    return [headline("concurrent", ours, "/s", target, met, peer, theirs)]


def io_bound(medians: Mapping[str, Mapping[str, float | None]]) -> list[Row]:
    """``bench.io_bound``: ``medians[kind][system]`` tasks/s for kind "sleep" and "http"."""
    out = []
    for kind, values in medians.items():
        ours = values.get(PROJECT)
        peer, theirs = _best(values)
        met = None if ours is None or not theirs else ours >= 2.5 * theirs
        out.append(headline(f"io_{kind}", ours, "/s", "≥ 2.5x the best of Taskiq and arq", met, peer, theirs))
    return out


def cpu_bound(medians: Mapping[str, float | None], bound: float) -> list[Row]:
    """``bench.cpu_bound``: median tasks/s per system (jobqueue: its process pool, the pool that can
    hard-kill a task); ``bound`` = cores x 1,000 / burn ms."""
    ours = medians.get(PROJECT)
    peer, theirs = _best(medians)
    met = None if ours is None else ours >= 0.9 * bound and (theirs is None or ours > theirs)
    target = f"≥ 90% of the bound ({bound:,.0f}/s), ahead of every peer"
    return [headline("cpu_bound", ours, "/s", target, met, peer, theirs)]


def cold_start(medians: Mapping[str, float | None]) -> list[Row]:
    """``bench.cold_start``: median seconds per system, default worker commands."""
    ours = medians.get(PROJECT)
    peer, theirs = _best(medians, lower=True)
    met = None if ours is None or theirs is None else ours <= theirs
    return [headline("cold_start", ours, "s", "≤ the best peer", met, peer, theirs, lower_is_better=True)]


def queue_scale(queues: int, scrape_ms: float, page_ms: float) -> list[Row]:
    """``bench.queue_scale``: at its largest size, a ``/metrics`` scrape and a page of 100 queues."""
    return [
        headline("scrape", scrape_ms, "ms", f"< 1,000 ms at {queues:,} queues", scrape_ms < 1000),
        headline("page", page_ms, "ms", f"< 200 ms at {queues:,} queues", page_ms < 200),
    ]


def recorder_overhead(targets: Mapping[str, Any]) -> list[Row]:
    """``bench.recorder_overhead``: its four figures, from ``bench.recorder_verdict.verdicts()``."""
    cpu, share = targets["recorder_cpu_us_per_event"], targets["recorder_share_of_redis_percent"]
    rate, lag = targets["catch_up_events_per_second"], targets["lag_under_sustained_max_load"]
    halves = [h for h in lag["max_behind_seconds_first_half_second_half"] if h]
    worst = max((h[1] for h in halves), default=None)
    return [
        headline("record_cpu", cpu["measured"], "µs", "≤ 25 µs", cpu["met"]),
        headline("record_share", share["measured"], "%", "≤ 5%", share["met"]),
        headline("record_catch_up", rate["x_hot_path_max"], "x", "≥ 2x", rate["met"]),
        headline("record_lag", worst, "s", "not growing (worst second half shown)", lag["met"]),
    ]
