"""bench.recorder_overhead: a tiny run, so `make test` keeps the measurement working and its record check
honest (every stream entry recorded once, every task recorded as succeeded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from bench.recorder_meter import backlog
from bench.recorder_overhead import main

from jobqueue import Client

pytestmark = pytest.mark.timeout(240)


def test_a_small_run_measures_both_kinds_and_verifies_the_record(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    docs = tmp_path / "benchmarks.md"
    args = [
        "--tasks",
        "300",
        "--rounds",
        "1",
        "--record",
        "niceness=5",
        "--json",
        str(out),
        "--docs",
        str(docs),
    ]
    assert main(args) == 0
    assert "| recorder CPU per event (live rounds) |" in docs.read_text()
    result = json.loads(out.read_text())
    assert result["recorder_settings"] == {"JOBQUEUE_RECORD_NICENESS": "5"}
    assert result["recorder"]["every_event_recorded_once"] is True
    [plain, recorded] = sorted(result["raw"], key=lambda r: r["recorder"])
    assert recorded["events"] == 900 and recorded["detail"]["check"]["missing"] == 0
    assert plain["process_per_second"] > 0 and recorded["process_per_second"] > 0
    assert result["cpu_ms_per_1000_tasks"]["recorder_process"] > 0
    # The four figures of the record, each against its target, the catch-up from a pre-filled backlog.
    targets = result["targets"]
    assert targets["catch_up_events_per_second"]["measured"] > 0
    assert targets["recorder_cpu_us_per_event"]["measured"] > 0
    assert targets["recorder_share_of_redis_percent"]["target"] == "<= 5"
    assert len(targets["lag_under_sustained_max_load"]["max_behind_seconds_first_half_second_half"]) == 1
    # Saved beside the page for bench.summary: the same four figures, each with its verdict.
    saved = json.loads((tmp_path / "summary" / "recorder_overhead.json").read_text())
    rows = {row["key"]: row for row in saved["rows"]}
    assert list(rows) == ["record_cpu", "record_share", "record_catch_up", "record_lag"]
    assert rows["record_cpu"]["jobqueue"] == targets["recorder_cpu_us_per_event"]["measured"]
    assert rows["record_share"]["met"] is targets["recorder_share_of_redis_percent"]["met"]


def test_backlog_counts_from_the_committed_position_even_after_trimming(client: Client) -> None:
    """The backlog is the stream's entries added minus those the recorder consumed (trimmed ones it
    skipped included), read from the positions it mirrors into Redis."""
    stream = client.queue_keys("meter").events
    conn = redis.Redis.from_url(
        client.settings.redis_url.get_secret_value(), decode_responses=True, protocol=2
    )
    try:
        # 15 trimmed before anyone read them
        ids = [conn.xadd(stream, {"n": str(i)}, maxlen=5, approximate=False) for i in range(20)]
        assert backlog(conn, stream, "positions")[0] == 5  # nothing recorded yet: what is left to read
        conn.hset("positions", stream, f"{ids[16]} 17")  # recorded up to the 17th entry
        waiting, age = backlog(conn, stream, "positions")
        assert waiting == 3 and age >= 0.0
        conn.hset("positions", stream, f"{ids[-1]} 20")  # everything, the trimmed 15 counted as consumed
        assert backlog(conn, stream, "positions") == (0, 0.0)
    finally:
        conn.close()
