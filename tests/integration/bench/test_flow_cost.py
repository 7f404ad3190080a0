"""bench.flow_cost: flow control adds no round trip per task (every check is inside the fetch script)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.flow_cost import DOCS_MARKERS, main, run, table

pytestmark = pytest.mark.timeout(120)


def test_flow_control_costs_no_extra_round_trip(tmp_path: Path) -> None:
    plain, controlled = run(tasks=400, batch=16, data_dir=tmp_path)
    assert plain.round_trips_per_task == pytest.approx(controlled.round_trips_per_task)
    assert plain.round_trips_per_task == pytest.approx(2 / 16, rel=0.05)  # one fetch + one ack pipeline
    # The checks run inside the script: a handful of extra Redis commands per task, not per round trip.
    assert 0 <= controlled.commands_per_task - plain.commands_per_task < 3
    assert "round trips / task" in table([plain, controlled])


def test_the_step_writes_its_table_between_its_markers(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# B\n\n{DOCS_MARKERS[0]}\nold table\n{DOCS_MARKERS[1]}\n\nafter\n")
    main(["--tasks", "200", "--docs", str(docs)])
    text = docs.read_text()
    assert "old table" not in text and text.endswith("\n\nafter\n")
    assert "`python -m bench.flow_cost --tasks 200 --docs" in text and "load average" in text
    assert "| no flow control | 0.1" in text and "| rate limit + max in-flight + weighted | 0.1" in text
