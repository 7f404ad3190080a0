"""`python -m bench.concurrent_enqueue`, `python -m bench.queue_scale` and `python -m bench.scale_costs` at
tiny sizes (jobqueue's own variants: the peers' venvs are the harness tests' business), so no harness can
rot unnoticed. The first two write their tables into a copy of the docs and save their headline figures
beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import concurrent_enqueue, queue_scale, scale_costs

pytestmark = pytest.mark.timeout(180)


def _docs(tmp_path: Path, markers: tuple[str, str]) -> Path:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\n{markers[0]}\nold table\n{markers[1]}\n\nafter\n")
    return docs


def _table(docs: Path, markers: tuple[str, str]) -> str:
    text = docs.read_text()
    assert "old table" not in text and text.endswith("\n\nafter\n")
    return text.partition(markers[0])[2].partition(markers[1])[0]


def test_concurrent_producers_run_and_write_a_median_per_variant(tmp_path: Path) -> None:
    variants = "jobqueue-one,jobqueue-async-one,jobqueue-async,jobqueue-threads"
    args = ["--tasks", "200", "--producers", "10", "--rounds", "1", "--variants", variants]
    docs = _docs(tmp_path, concurrent_enqueue.DOCS_MARKERS)
    assert concurrent_enqueue.main([*args, "--docs", str(docs)]) == 0
    table = _table(docs, concurrent_enqueue.DOCS_MARKERS)
    assert "`python -m bench.concurrent_enqueue --tasks 200" in table and "load average" in table
    for label in ("`Client`, one by one", "`AsyncClient`, one by one", "`AsyncClient`, 10 coroutines",
                  "`Client`, 10 threads"):  # fmt: skip
        assert f"| jobqueue {label} | " in table
    (row,) = json.loads((tmp_path / "summary" / "concurrent_enqueue.json").read_text())["rows"]
    assert row["key"] == "concurrent" and row["jobqueue"] > 0 and row["peer"] is None and row["met"] is None


def test_unknown_variants_are_refused() -> None:
    with pytest.raises(SystemExit):
        concurrent_enqueue.main(["--variants", "jobqueue-one,nosuch"])


def test_queue_scale_reports_each_size(tmp_path: Path) -> None:
    docs = _docs(tmp_path, queue_scale.DOCS_MARKERS)
    assert queue_scale.main(["--queues", "5,50", "--repeats", "1", "--old", "--docs", str(docs)]) == 0
    table = _table(docs, queue_scale.DOCS_MARKERS)
    assert "| 5 | " in table and "| 50 | " in table
    scrape, page = json.loads((tmp_path / "summary" / "queue_scale.json").read_text())["rows"]
    assert scrape["key"] == "scrape" and "at 50 queues" in scrape["target"] and page["met"] is True


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
