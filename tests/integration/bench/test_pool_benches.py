"""Smoke tests of ``python -m bench.cold_start`` and ``python -m bench.cpu_bound`` on jobqueue alone (the
peers' rows run the same code with their own worker commands): tiny sizes, every run must succeed."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import cold_start, cpu_bound

pytestmark = pytest.mark.timeout(180)


def test_cold_start_measures_the_default_command_and_an_extra_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--systems", "jobqueue", "--rounds", "1", "--extra", "thread=--pool thread --concurrency 2"]
    assert cold_start.main([*args, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| jobqueue | `jobqueue worker --pool process --concurrency 4` |" in out
    assert "| jobqueue thread | `jobqueue worker --pool thread --concurrency 2` |" in out


def test_cold_start_measures_a_baseline_checkout_in_the_same_rounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # This checkout's own package as the baseline: the row is there and its run started its task.
    worker_image = Path(__file__).resolve().parents[3] / "worker_image"
    args = ["--systems", "jobqueue", "--rounds", "1", "--baseline", str(worker_image)]
    assert cold_start.main([*args, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| jobqueue baseline | `jobqueue worker --pool process --concurrency 4` |" in out


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
    assert cpu_bound.main(args) == 0
    out = capsys.readouterr().out
    assert "ms CPU, bound" in out
    assert "| jobqueue | `jobqueue worker --pool process --concurrency 2` |" in out
