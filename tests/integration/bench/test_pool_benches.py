"""Smoke tests of ``python -m bench.cold_start`` and ``python -m bench.cpu_bound`` on jobqueue alone (the
peers' rows run the same code with their own worker commands): tiny sizes, every run must succeed; each
writes its table between its markers of a copy of the docs and saves its headline figures, which
``python -m bench.summary`` then composes into the summary table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from bench import cold_start, cpu_bound, summary
from bench.peers_env import is_installed

pytestmark = pytest.mark.timeout(180)


def test_cold_start_measures_the_default_command_and_an_extra_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = _docs(tmp_path, cold_start.DOCS_MARKERS)
    args = ["--systems", "jobqueue", "--rounds", "1", "--extra", "thread=--pool thread --concurrency 2"]
    assert cold_start.main([*args, "--out", str(tmp_path), *_outputs(tmp_path, docs)]) == 0
    out = capsys.readouterr().out
    assert "| jobqueue | `jobqueue worker --pool process --concurrency 4` |" in out
    assert "| jobqueue thread | `jobqueue worker --pool thread --concurrency 2` |" in out
    table = _between(docs, cold_start.DOCS_MARKERS)
    assert "`python -m bench.cold_start --systems jobqueue --rounds 1" in table and "load average" in table
    assert "| jobqueue | `jobqueue worker --pool process --concurrency 4` | " in table
    assert "| jobqueue thread |" in table and "n/a" not in table
    (row,) = json.loads((tmp_path / "summary" / "cold_start.json").read_text())["rows"]
    # Only the default command feeds the summary (the extra is not what a user runs), in seconds.
    assert row["key"] == "cold_start" and 0 < row["jobqueue"] < 30 and row["peer"] is None


def test_cold_start_measures_a_baseline_checkout_in_the_same_rounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # This checkout's own package as the baseline: the row is there and its run started its task.
    worker_image = Path(__file__).resolve().parents[3] / "worker_image"
    args = ["--systems", "jobqueue", "--rounds", "1", "--baseline", str(worker_image), "--no-docs"]
    assert cold_start.main([*args, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| jobqueue baseline | `jobqueue worker --pool process --concurrency 4` |" in out
    assert not (tmp_path / "summary").exists()  # --no-docs: a look, not a figure for the summary


def test_cpu_bound_runs_burning_tasks_exactly_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--systems",
        "jobqueue",
        "--tasks",
        "40",
        "--rounds",
        "1",
        "--burn-ms",
        "1",
        "--out",
        str(tmp_path),
    ]
    docs = _docs(tmp_path, cpu_bound.DOCS_MARKERS)
    assert cpu_bound.main([*args, *_outputs(tmp_path, docs)]) == 0
    out = capsys.readouterr().out
    assert "1 ms CPU per run, bound" in out
    assert "| jobqueue | `jobqueue worker --pool process --concurrency 2` |" in out
    table = _between(docs, cpu_bound.DOCS_MARKERS)
    assert "`python -m bench.cpu_bound --systems jobqueue --tasks 40" in table and "load average" in table
    assert "| jobqueue | `jobqueue worker --processes 2 --pool thread --concurrency 1` | " in table
    assert "n/a" not in table
    (row,) = json.loads((tmp_path / "summary" / "cpu_bound.json").read_text())["rows"]
    assert row["key"] == "cpu_bound" and row["jobqueue"] > 0 and "% of the bound (" in row["target"]

    # The last step of `make bench`: one table with a row per workload, these two measured.
    assert summary.main(["--summary-dir", str(tmp_path / "summary"), "--docs", str(docs)]) == 0
    rows = _between(docs, (summary.SUMMARY_START, summary.SUMMARY_END)).splitlines()
    workloads = [line for line in rows if line.startswith("| [")]
    assert len(workloads) == len(summary.WORKLOADS)
    (cpu_row,) = [line for line in workloads if line.startswith("| [CPU-bound")]
    assert "/s |" in cpu_row and "(`cpu_bound`)" in cpu_row and "not measured yet" not in cpu_row
    assert sum("not measured yet" in line for line in workloads) == len(summary.WORKLOADS) - 1
    assert _between(docs, cpu_bound.DOCS_MARKERS) == table  # the summary left the step's table alone


def _docs(tmp_path: Path, markers: tuple[str, str]) -> Path:
    """A copy of the page's shape: the summary's markers, the step's markers, text around them."""
    docs = tmp_path / "benchmarks.md"
    start, end = markers
    docs.write_text(
        f"# Benchmarks\n\n{summary.SUMMARY_START}\nold summary\n{summary.SUMMARY_END}\n\n"
        f"{start}\nold table\n{end}\n\nafter\n"
    )
    return docs


def _outputs(tmp_path: Path, docs: Path) -> list[str]:
    return ["--docs", str(docs), "--summary-dir", str(tmp_path / "summary")]


def _between(docs: Path, markers: tuple[str, str]) -> str:
    text = docs.read_text()
    assert "old table" not in text and text.endswith("\n\nafter\n")
    return text.partition(markers[0])[2].partition(markers[1])[0]


@pytest.mark.timeout(600)
def test_the_peers_rows_of_both_steps_feed_the_summary(tmp_path: Path) -> None:
    """Huey and Dramatiq beside jobqueue, tiny: their rows are measured, and the summary names the best
    peer of each step (the peers' venv is built here under CI, else a loud skip when missing)."""
    if not is_installed("peers") and os.environ.get("CI") != "true":
        pytest.skip("PEER VENV 'peers' NOT INSTALLED: run `make bench` once (CI builds it)")
    docs = _docs(tmp_path, cold_start.DOCS_MARKERS)
    start, end = cpu_bound.DOCS_MARKERS
    docs.write_text(docs.read_text() + f"\n{start}\nold table\n{end}\n\nafter\n")
    systems = ["--systems", "jobqueue,huey,dramatiq"]
    assert (
        cold_start.main([*systems, "--rounds", "1", "--out", str(tmp_path), *_outputs(tmp_path, docs)]) == 0
    )
    cpu_args = ["--tasks", "40", "--rounds", "1", "--burn-ms", "1", "--out", str(tmp_path)]
    assert cpu_bound.main([*systems, *cpu_args, *_outputs(tmp_path, docs)]) == 0
    for markers in (cold_start.DOCS_MARKERS, cpu_bound.DOCS_MARKERS):
        table = _between(docs, markers)
        assert "| huey | `huey_consumer" in table and "| dramatiq | `dramatiq" in table and "n/a" not in table
    assert summary.main(["--summary-dir", str(tmp_path / "summary"), "--docs", str(docs)]) == 0
    rows = _between(docs, (summary.SUMMARY_START, summary.SUMMARY_END)).splitlines()
    for title in ("[CPU-bound", "[cold start"):
        (row,) = [line for line in rows if line.startswith(f"| {title}")]
        peer = row.split(" | ")[2]
        assert peer in ("huey", "dramatiq") and row.split(" | ")[4].endswith(("x", "(lower is better)"))
