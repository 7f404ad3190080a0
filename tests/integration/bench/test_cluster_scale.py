"""`python -m bench.cluster_scale` at a tiny size (a standalone server and a real 3-primary cluster, real
worker processes), so the harness cannot rot unnoticed."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import cluster_scale

pytestmark = pytest.mark.timeout(120)


def test_cluster_scale_reports_every_cell_with_cpu_per_shard_and_writes_its_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nkept\n")
    args = ["--tasks", "40", "--batch", "10", "--rounds", "1", "--workers", "1", "--docs", str(docs)]
    assert cluster_scale.main(args) == 0  # non-zero when a task was lost or ran twice
    written = docs.read_text()
    assert "kept" in written and "<!-- bench:cluster:start -->" in written
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    cells = {tuple(cell.strip() for cell in row.strip("|").split("|")[:2]) for row in rows}
    assert {("1 shard", "1"), ("1 shard", "3"), ("3 shards", "1"), ("3 shards", "3")} <= cells
    for row in rows[2:]:
        assert row.rstrip(" |").endswith("0 / 0")  # no duplicate, nothing lost
        shard_loads = row.split("|")[7]
        assert shard_loads.count("%") == (3 if "3 shards" in row else 1)


def test_batches_hold_one_queue_each_and_split_the_tasks_evenly() -> None:
    assert cluster_scale.batches(["a", "b", "c"], 10, 2) == [
        ("a", [0, 3]), ("b", [1, 4]), ("c", [2, 5]), ("a", [6, 9]), ("b", [7]), ("c", [8]),
    ]  # fmt: skip
