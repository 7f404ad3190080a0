"""Smoke test of ``python -m bench.latency_load`` on jobqueue alone (the peers' rows run the same code with
their own default worker commands): a maximum-rate run, then paced latency runs at 100/s, 50% and 90% of
it from several producer processes, each checked exactly-once, and the table written between its markers."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import latency_load

pytestmark = pytest.mark.timeout(60)


def test_one_round_measures_max_then_three_loads_and_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text(f"# before\n\n{latency_load.MARKERS[0]}\nold\n{latency_load.MARKERS[1]}\n\n# after\n")
    args = [
        "--systems",
        "jobqueue",
        "--tasks",
        "200",
        "--rounds",
        "1",
        "--seconds",
        "0.4",
        "--warmup",
        "1.0",
        "--per-producer",
        "600",
        "--max-producers",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--docs",
        str(docs),
    ]
    assert latency_load.main(args) == 0
    out = capsys.readouterr().out
    for label in ("100/s", "50%", "90%"):
        assert f"round 1 jobqueue {label}: target" in out
    text = docs.read_text()
    assert "old" not in text and text.startswith("# before") and text.rstrip().endswith("# after")
    row = next(line for line in text.splitlines() if line.startswith("| jobqueue |"))
    assert "`jobqueue worker --pool process --concurrency 4`" in row and "n/a" not in row
