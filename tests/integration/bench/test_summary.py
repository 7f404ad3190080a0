"""``python -m bench.summary`` and the headline figures each step saves (bench/headlines.py): pure
composition from saved files, so no servers; a stale row keeps its own date, a newer run of a step
replaces that step's rows only, and a broken file never stops the summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from bench import headlines, steptime, summary

pytestmark = pytest.mark.timeout(30)


def _rows_by_title(records: list[dict[str, object]]) -> dict[str, list[str]]:
    return {row[0].split("](")[0].lstrip("["): row for row in summary.rows(records)[1:]}


def _record(step: str, date: str, rows: list[dict[str, object]]) -> dict[str, object]:
    return {
        **summary.step_record(step, f"python -m bench.{step}", "1.0 at start, 2.0 at end", rows),
        "date": date,
    }


def test_each_workload_is_one_row_in_the_page_order_measured_or_not() -> None:
    table = summary.rows([])
    assert table[0] == summary.HEADER
    assert [row[0] for row in table[1:]] == [f"[{t}](#{a})" for _, t, a in summary.WORKLOADS]
    assert all(row[1] == "not measured yet" for row in table[1:])


def test_a_stale_row_shows_its_own_date_and_a_newer_run_of_the_same_step_wins() -> None:
    old_io = _record("io_bound", "2026-01-01 00:00 UTC", headlines.io_bound({"sleep": {"jobqueue": 1.0}}))
    rates = {"sleep": {"jobqueue": 3000.0, "taskiq": 1000.0, "arq": 500.0}}
    new_io = _record("io_bound", "2026-02-01 00:00 UTC", headlines.io_bound(rates))
    cold = _record("cold_start", "2025-12-24 10:00 UTC",
                   headlines.cold_start({"jobqueue": 0.5, "huey": 0.25, "dramatiq": None}))  # fmt: skip
    rows = _rows_by_title([new_io, cold, old_io])
    sleep = rows["I/O-bound: 50 ms asyncio.sleep"]
    assert sleep[1:] == ["3,000/s", "taskiq", "1,000/s", "3.00x", "≥ 2.5x the best of Taskiq and arq", "yes",
                         "2026-02-01 00:00 UTC (`io_bound`)"]  # fmt: skip
    start = rows["cold start, default worker command"]
    assert start[1:] == ["0.50 s", "huey", "0.25 s", "2.00x (lower is better)", "≤ the best peer", "**no**",
                         "2025-12-24 10:00 UTC (`cold_start`)"]  # fmt: skip
    assert rows["I/O-bound: 50 ms HTTP GET"][1] == "not measured yet"


def test_the_targets_are_decided_by_each_steps_own_rule() -> None:
    (cpu,) = headlines.cpu_bound({"jobqueue": 950.0, "huey": 900.0}, bound=1000.0)
    assert cpu["met"] is True and cpu["peer"] == "huey"
    (behind,) = headlines.cpu_bound({"jobqueue": 950.0, "huey": 960.0}, bound=1000.0)
    assert behind["met"] is False  # 95% of the bound, but not ahead of every peer
    (conc,) = headlines.concurrent_enqueue(
        {"jobqueue-async": 20000.0, "jobqueue-one": 5000.0, "huey-threads": 10000.0, "huey-one": 15000.0}
    )
    # 2x the best peer's concurrent producer, but only 4x jobqueue's one-by-one: not met.
    assert (conc["peer"], conc["peer_value"], conc["met"]) == ("huey", 10000.0, False)
    scrape, page = headlines.queue_scale(10_000, 964.0, 14.5)
    assert scrape["met"] and page["met"] and "10,000 queues" in scrape["target"]
    load = headlines.latency_load({"jobqueue": 0.6, "huey": 0.5}, {"jobqueue": 1.0}, {"jobqueue": 64.0})
    assert [r["met"] for r in load] == [False, None, False]  # no peer p99: nothing to be at or below


def test_the_records_four_figures_come_from_its_verdicts() -> None:
    verdicts = {
        "recorder_cpu_us_per_event": {"measured": 13.6, "met": True},
        "recorder_share_of_redis_percent": {"measured": 10.75, "met": False},
        "catch_up_events_per_second": {"measured": 26286, "x_hot_path_max": 0.61, "met": False},
        "lag_under_sustained_max_load": {"max_behind_seconds_first_half_second_half": [[0.5, 2.4], None],
                                         "met": False},
    }  # fmt: skip
    rows = _rows_by_title(
        [_record("recorder_overhead", "2026-12-07 00:50 UTC", headlines.recorder_overhead(verdicts))]
    )
    assert rows["record: recorder CPU per event"][1] == "13.6 µs"
    assert rows["record: share of Redis command time"][1:2] == ["10.8%"]
    assert rows["record: catch-up vs the hot path's maximum"][1] == "0.61x"
    assert rows["record: lag under sustained maximum load"][1] == "2.40 s"


def test_a_broken_or_foreign_file_is_skipped_and_the_markers_are_replaced(tmp_path: Path) -> None:
    directory = tmp_path / "summary"
    summary.save(
        _record("cold_start", "2026-12-07 06:00 UTC", headlines.cold_start({"jobqueue": 0.4})), directory
    )
    (directory / "half.json").write_text('{"step": "io_bound", "rows": [')  # an interrupted write
    (directory / "list.json").write_text("[1, 2]")
    (directory / "hostile.json").write_text(json.dumps({"step": "x\u0000", "rows": "not a list"}))
    bad_rows = [
        {**headlines.cpu_bound({"jobqueue": 1.0}, 1000.0)[0], "jobqueue": 10**400},  # no float holds it
        {**headlines.io_bound({"sleep": {"jobqueue": 1.0}})[0], "met": "maybe"},
        {**headlines.io_bound({"http": {"jobqueue": 1.0}})[0], "jobqueue": True},
        {**headlines.concurrent_enqueue({"jobqueue-async": 1.0})[0], "jobqueue": float("nan")},
    ]
    summary.save(_record("hostile_rows", "2026-12-07 07:00 UTC", bad_rows), directory)
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# B\n\n{summary.SUMMARY_START}\nold\n{summary.SUMMARY_END}\n\n## Next\n")
    assert summary.main(["--summary-dir", str(directory), "--docs", str(docs)]) == 0
    text = docs.read_text()
    assert "\nold\n" not in text and text.endswith(f"{summary.SUMMARY_END}\n\n## Next\n")
    assert "| [cold start, default worker command](#cold-start) | 0.40 s |" in text
    for title in (
        "CPU-bound",
        "I/O-bound: 50 ms asyncio.sleep",
        "I/O-bound: 50 ms HTTP GET",
        "100 concurrent",
    ):
        (line,) = [line for line in text.splitlines() if line.startswith(f"| [{title}")]
        assert "| not measured yet |" in line
    assert (
        "- `cold_start`: `python -m bench.cold_start`, 2026-12-07 06:00 UTC, load average 1.0 at start"
        in text
    )


def test_each_step_is_timed_and_listed_in_the_order_make_bench_ran_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "summary"
    monkeypatch.setenv("BENCH_SUMMARY_DIR", str(directory))
    assert steptime.main(["--", sys.executable, "-c", "pass"]) == 0
    # The step's exit status passes through (make stops on it), and the time is kept anyway.
    assert steptime.main(["--", sys.executable, "-c", "import sys; sys.exit(3)"]) == 3
    assert steptime.main(["--", sys.executable, "-c", "pass"]) == 0  # run again: moves last, not doubled
    docs = tmp_path / "benchmarks.md"
    start, end = summary.STEPS_MARKERS
    docs.write_text(f"{summary.SUMMARY_START}\n{summary.SUMMARY_END}\n\n{start}\nold\n{end}\n")
    summary.write(docs, directory)
    steps = docs.read_text().partition(start)[2].partition(end)[0]
    rows = [line for line in steps.splitlines() if line.startswith("| `python -c")]
    assert len(rows) == 2
    # Shown as it can be run again: the interpreter as `python`, the arguments shell-quoted.
    assert rows[0].startswith("| `python -c 'import sys; sys.exit(3)'` | ") and "(failed, exit 3)" in rows[0]
    assert rows[1].startswith("| `python -c pass` | ") and " s | " in rows[1]
