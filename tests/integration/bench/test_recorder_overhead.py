"""bench.recorder_overhead: a tiny run, so `make test` keeps the measurement working and its record check
honest (every stream entry recorded once, every task recorded as succeeded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench.recorder_overhead import main

pytestmark = pytest.mark.timeout(240)


def test_a_small_run_measures_both_kinds_and_verifies_the_record(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    assert main(["--tasks", "300", "--rounds", "1", "--record", "niceness=5", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["recorder_settings"] == {"JOBQUEUE_RECORD_NICENESS": "5"}
    assert result["recorder"]["every_event_recorded_once"] is True
    [plain, recorded] = sorted(result["raw"], key=lambda r: r["recorder"])
    assert recorded["events"] == 900 and recorded["detail"]["check"]["missing"] == 0
    assert plain["process_per_second"] > 0 and recorded["process_per_second"] > 0
    assert result["cpu_ms_per_1000_tasks"]["recorder_process"] > 0
