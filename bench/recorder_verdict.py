"""What the rounds of bench.recorder_overhead add up to, pure: medians without and with the recorder and
their spread, the recorder's lag, catch-up and CPU, issue 21's four figures against their targets, and the
part of docs/benchmarks.md they fill (bench/recorder_rounds.py measures the inputs).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from bench.recorder_rounds import CatchUp, Round
from bench.report import markdown, measured_with


def verdicts(summary: dict[str, Any], catch_up: Sequence[CatchUp], rounds: Sequence[Round]) -> dict[str, Any]:
    """Issue 21's four figures for the record, each against its target."""
    recorded = [r for r in rounds if r.recorder]
    events_per_task = 3.0  # enqueued, started, succeeded: one event each per no-op task
    plain = [r.process_per_second for r in rounds if not r.recorder and r.process_per_second]
    hot_events = statistics.median(plain) * events_per_task if plain else 0.0
    cpu_us = summary["recorder"]["cpu_ms_per_1000_events"]
    share = statistics.median(r.redis_share_percent for r in recorded) if recorded else None
    rate = statistics.median(c.events_per_second for c in catch_up) if catch_up else None
    halves = [r.detail.get("lag_halves_seconds") for r in recorded]
    bounded = all(h and h[1] <= max(2 * h[0], 1.0) for h in halves)
    cpu_met = cpu_us is not None and cpu_us <= 25
    share_met = share is not None and share <= 5
    rate_met = bool(rate and hot_events and rate >= 2 * hot_events)
    return {
        "hot_path_max_events_per_second": round(hot_events),
        "recorder_cpu_us_per_event": {"measured": cpu_us, "target": "<= 25", "met": cpu_met},
        "recorder_share_of_redis_percent": {"measured": share, "target": "<= 5", "met": share_met},
        "catch_up_events_per_second": {
            "measured": rate, "x_hot_path_max": round(rate / hot_events, 2) if rate and hot_events else None,
            "target": ">= 2x the hot path's maximum rate", "met": rate_met,
            "recorder_cpu_us_per_event": [c.recorder_cpu_us_per_event for c in catch_up],
        },
        "lag_under_sustained_max_load": {
            "max_behind_seconds_first_half_second_half": halves,
            "target": "not growing: second half <= max(2x first half, 1 s)", "met": bounded,
        },
    }  # fmt: skip


DOCS_MARKERS = ("<!-- bench:record:start -->", "<!-- bench:record:end -->")


def docs_section(result: dict[str, Any], command: str) -> str:
    """The generated record part of docs/benchmarks.md: the four figures against their targets."""
    t = result["targets"]
    load = ", ".join(f"{x:.1f}" for x in result["load_average_after"])
    yes = {True: "yes", False: "no"}
    cpu, share = t["recorder_cpu_us_per_event"], t["recorder_share_of_redis_percent"]
    rate, lag = t["catch_up_events_per_second"], t["lag_under_sustained_max_load"]
    halves = "; ".join(f"{a:.1f} / {b:.1f}" for a, b in lag["max_behind_seconds_first_half_second_half"])
    rows = [
        ["figure", "measured", "target", "met"],
        ["recorder CPU per event (live rounds)", f"{cpu['measured']} µs", "≤ 25 µs", yes[cpu["met"]]],
        ["recorder's share of Redis command time", f"{share['measured']}%", "≤ 5%", yes[share["met"]]],
        ["catch-up from a pre-filled stream", f"{rate['measured']:,} events/s = {rate['x_hot_path_max']}x "
         f"the hot path's {t['hot_path_max_events_per_second']:,}", "≥ 2x", yes[rate["met"]]],
        ["lag, worst seconds behind, first / second half of each round", halves, "not growing",
         yes[lag["met"]]],
    ]  # fmt: skip
    return (
        measured_with(command) + f" "
        f"({result['tasks_per_round']:,} tasks per round, {result['rounds']} rounds of each kind; "
        f"load average after: {load}).\n\n" + markdown(rows)
    )


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max, and half the min-max range as % of the median."""
    med = statistics.median(values)
    return {
        "median": round(med),
        "min": round(min(values)),
        "max": round(max(values)),
        "spread_percent": round((max(values) - min(values)) / 2 / med * 100, 1) if med else None,
        "runs": [round(v) for v in values],
    }


def summarize(rounds: Sequence[Round]) -> dict[str, Any]:
    """Medians without / with, their change in %, and the recorder's lag, catch-up and CPU."""
    plain = [r for r in rounds if not r.recorder]
    recorded = [r for r in rounds if r.recorder]
    out: dict[str, Any] = {}
    for metric in ("enqueue_per_second", "process_per_second"):
        a = [getattr(r, metric) for r in plain if getattr(r, metric)]
        b = [getattr(r, metric) for r in recorded if getattr(r, metric)]
        if a and b:
            change = (statistics.median(b) - statistics.median(a)) / statistics.median(a) * 100
            out[metric] = {"without": spread(a), "with": spread(b), "median_change_percent": round(change, 1)}
    events = sum(r.events for r in recorded)
    tasks = sum(r.events for r in recorded) / 3 or 1  # three events per task
    hot_with = sum(r.hot_path_cpu_seconds for r in recorded)
    record_cpu = sum(r.recorder_cpu_seconds + r.postgres_cpu_seconds for r in recorded)
    out["cpu_ms_per_1000_tasks"] = {
        "hot_path_without_recorder": round(
            statistics.median([r.hot_path_cpu_seconds for r in plain]) * 1e6 / (tasks / len(recorded)), 1
        ) if plain and recorded else None,
        "hot_path_with_recorder": round(hot_with * 1e6 / tasks, 1),
        "recorder_process": round(sum(r.recorder_cpu_seconds for r in recorded) * 1e6 / tasks, 1),
        "postgres": round(sum(r.postgres_cpu_seconds for r in recorded) * 1e6 / tasks, 1),
        "record_share_of_all_cpu_percent": round(record_cpu / (record_cpu + hot_with) * 100, 1)
        if hot_with
        else None,
    }  # fmt: skip
    out["recorder"] = {
        "max_backlog_events": [r.max_backlog_events for r in recorded],
        "max_behind_seconds": [r.max_behind_seconds for r in recorded],
        "backlog_when_workload_ended": [r.backlog_at_end for r in recorded],
        "catch_up_seconds": [r.catch_up_seconds for r in recorded],
        "share_of_redis_command_time_percent": [r.redis_share_percent for r in recorded],
        "cpu_ms_per_1000_events": round(sum(r.recorder_cpu_seconds for r in recorded) * 1e6 / events, 1)
        if events
        else None,
        "every_event_recorded_once": all(r.recorded_once for r in recorded),
    }
    return out
