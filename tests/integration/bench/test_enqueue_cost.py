"""`python -m bench.enqueue_cost` at a tiny size: every variant kind but Huey (its venv is the harness
tests' business), the baseline imported through PYTHONPATH, the medians printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import enqueue_cost

pytestmark = pytest.mark.timeout(120)

WORKER_IMAGE = Path(__file__).resolve().parents[3] / "worker_image"


def test_a_tiny_ab_run_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--rounds",
        "2",
        "--one",
        "20",
        "--batch",
        "30",
        "--without-huey",
        "--baseline",
        str(WORKER_IMAGE),
    ]
    assert enqueue_cost.main(args) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("baseline ", "jobqueue "))]
    medians = {(r[0], r[1]) for r in rows if r[1] in ("one", "batch") and not r[0].startswith("round")}
    assert medians == {("baseline", "one"), ("baseline", "batch"), ("jobqueue", "one"), ("jobqueue", "batch")}
    assert out.count("round ") == 2 * 4


def test_the_round_trip_floor_is_measured_with_a_ping_and_a_trivial_evalsha(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--rounds", "1", "--one", "20", "--batch", "30", "--without-huey", "--floor"]
    assert enqueue_cost.main(args) == 0
    out = capsys.readouterr().out
    medians = [line.split() for line in out.splitlines() if line.startswith("floor ")]
    assert {r[1] for r in medians} == {"ping", "evalsha"}
    assert all(float(r[2].replace(",", "")) > 0 for r in medians)
