"""Smoke test of ``python -m bench.latency_ab``: one tiny interleaved round of two trees (both this
checkout's worker_image), each run checked exactly-once by the harness's latency phase."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import latency_ab

pytestmark = pytest.mark.timeout(180)

WORKER_IMAGE = Path(__file__).resolve().parents[3] / "worker_image"


def test_one_round_of_two_trees_prints_both_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    trees = f"a={WORKER_IMAGE},b={WORKER_IMAGE}"
    args = ["--trees", trees, "--settings", "thread:2x2", "--rounds", "1", "--seconds", "0.3", "--rate", "50"]
    assert latency_ab.main(args) == 0
    out = capsys.readouterr().out
    assert "round 0 thread:2x2 a: p50" in out and "round 0 thread:2x2 b: p50" in out
    assert "thread:2x2   a" in out and "thread:2x2   b" in out
