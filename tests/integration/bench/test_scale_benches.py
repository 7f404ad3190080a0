"""`python -m bench.concurrent_enqueue`, `python -m bench.queue_scale` and `python -m bench.scale_costs` at
tiny sizes (jobqueue's own variants: the peers' venvs are the harness tests' business), so no harness can
rot unnoticed."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import concurrent_enqueue, queue_scale, scale_costs

pytestmark = pytest.mark.timeout(180)


def test_concurrent_producers_run_and_print_a_median_per_variant(capsys: pytest.CaptureFixture[str]) -> None:
    variants = "jobqueue-one,jobqueue-async-one,jobqueue-async,jobqueue-threads"
    args = ["--tasks", "200", "--producers", "10", "--rounds", "1", "--variants", variants]
    assert concurrent_enqueue.main(args) == 0
    out = capsys.readouterr().out
    for variant in variants.split(","):
        assert f"| {variant} | " in out


def test_unknown_variants_are_refused() -> None:
    with pytest.raises(SystemExit):
        concurrent_enqueue.main(["--variants", "jobqueue-one,nosuch"])


def test_queue_scale_reports_each_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert queue_scale.main(["--queues", "5,50", "--repeats", "1", "--old"]) == 0
    out = capsys.readouterr().out
    assert "| 5 | " in out and "| 50 | " in out


def test_scale_costs_report_workers_schedules_and_delayed_tasks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nkept\n")
    args = ["--workers", "3,30", "--schedules", "12,40", "--delayed", "100,1000", "--repeats", "1"]
    assert scale_costs.main([*args, "--docs", str(docs)]) == 0
    assert "kept" in docs.read_text() and "<!-- bench:scale:start -->" in docs.read_text()
    out = capsys.readouterr().out
    assert "| 30 | " in out and "| 40 | " in out and "| 1,000 | " in out
    # The dead entries added after the largest size are pruned by one heartbeat: 30 live ones remain.
    assert "30 + 30 dead a day ago, pruned by a heartbeat" in out
    pruned = next(line for line in out.splitlines() if "pruned by a heartbeat" in line)
    assert pruned.rstrip(" |").endswith("| 30")
