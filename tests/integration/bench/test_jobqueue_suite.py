"""bench.jobqueue_suite at tiny sizes: every section runs, every task runs exactly once, and the docs
section it writes has one table per section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.jobqueue_suite import DOCS_MARKERS, main

pytestmark = pytest.mark.timeout(300)


def test_every_section_runs_and_is_written_to_the_docs(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# Benchmarks\n\n{DOCS_MARKERS[0]}\nold\n{DOCS_MARKERS[1]}\n\nkept\n")
    args = ["--tasks", "20", "--repeats", "1", "--depths", "30,300", "--depth-sample", "50",
            "--payloads", "100,20000", "--out", str(tmp_path / "out"), "--docs", str(docs)]  # fmt: skip
    assert main(args) == 0  # non-zero when any run lost a task
    text = docs.read_text()
    assert "old" not in text and text.rstrip().endswith("kept")
    for title in ("Worker processes", "Pools", "Flow control", "Queue length", "Payload size"):
        assert f"**{title}**" in text
    for row in ("| 4 worker processes |", "| async pool (64) |", "| 30 waiting, alone |", "| 300 waiting |",
                "| 30 waiting, alone again |", "| 20,000 B |"):  # fmt: skip
        assert row in text
    samples = json.loads((tmp_path / "out" / "samples.json").read_text())["samples"]
    processed = [s for s in samples if s["metric"] == "process"]
    assert len(processed) == 3 + 3 + 2 + 2
    assert all(s["ok"] and s["detail"]["duplicates"] == 0 for s in processed)
    dequeues = [s for s in samples if s["metric"] == "dequeue"]
    # One fetch script per batch of 16 and one ack pipeline per batch: flat in round trips by design.
    assert all(s["detail"]["round_trips"] <= 2 / 16 + 0.05 for s in dequeues)


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--sections", "nope", "--out", str(tmp_path)])
