"""bench.soak_verdict: the soak's duplicate rule and its table, without running the soak."""

from __future__ import annotations

from pathlib import Path

from bench.soak_verdict import Run, SoakReport, duplicate_runs, format_table, read_runs


def test_a_rerun_after_a_killed_worker_is_allowed() -> None:
    runs = [Run("t1", 1, group=100, started=10.0), Run("t1", 2, group=200, started=15.0)]
    assert duplicate_runs(runs, killed_groups={100}, redis_crashes=[]) == 0


def test_a_rerun_after_a_redis_crash_during_the_first_run_is_allowed() -> None:
    runs = [Run("t1", 1, group=100, started=10.0), Run("t1", 2, group=100, started=15.0)]
    assert duplicate_runs(runs, killed_groups=set(), redis_crashes=[12.0]) == 0


def test_a_rerun_without_a_fault_is_a_duplicate() -> None:
    runs = [Run("t1", 1, group=100, started=10.0), Run("t1", 2, group=100, started=15.0)]
    # A crash before the first run started, or after the rerun, cannot have expired the first lease.
    assert duplicate_runs(runs, killed_groups={999}, redis_crashes=[5.0, 20.0]) == 1


def test_the_same_fencing_token_twice_is_always_a_duplicate() -> None:
    runs = [Run("t1", 1, group=100, started=10.0), Run("t1", 1, group=200, started=15.0)]
    assert duplicate_runs(runs, killed_groups={100}, redis_crashes=[12.0]) == 1


def test_run_lines_torn_by_a_kill_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "7.runs").write_text("t1 1 7 10.5\nt2 1 7 11.0\nt3 1")
    assert read_runs(tmp_path) == [Run("t1", 1, 7, 10.5), Run("t2", 1, 7, 11.0)]


def test_the_report_names_each_broken_guarantee_and_prints_one_table() -> None:
    report = SoakReport(minutes=2, submitted_client=9, submitted_api=1, done=9, lost=1, http_500=2)
    assert report.problems() == ["lost: 1", "HTTP 500: 2"]
    table = format_table(report)
    assert table.splitlines()[0].startswith("| measure")
    assert "| tasks in" in table and "10 (client 9, API 1" in table
    assert SoakReport(minutes=1).problems() == ["no task was submitted"]


def test_a_hostile_submit_not_answered_422_is_a_problem() -> None:
    report = SoakReport(minutes=1, submitted_client=1, done=1, hostile=3, hostile_422=2, hostile_other=[0])
    assert report.problems() == ["hostile submits not answered 422: 1 (answers: [0])"]
