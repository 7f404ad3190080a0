"""The pure rules of worker monitoring: liveness thresholds, recovery hash parsing, orphaned leases."""

from __future__ import annotations

import json

import pytest

from jobqueue import Settings
from jobqueue.worker_monitor import (
    HeldLease,
    Liveness,
    MonitorInput,
    QueueRecoveries,
    Thresholds,
    monitor_stats,
)


def test_thresholds_follow_the_heartbeat_and_the_lease() -> None:
    t = Thresholds.from_settings(Settings(lease_seconds=30, heartbeat_seconds=5))
    assert (t.stale_after, t.dead_after) == (15, 30)
    # The heartbeat is capped at a third of the lease, so dead is never before stale.
    t = Thresholds.from_settings(Settings(lease_seconds=3, heartbeat_seconds=5))
    assert (t.stale_after, t.dead_after) == (3, 3)


@pytest.mark.parametrize(
    ("age", "state"),
    [(0.0, Liveness.LIVE), (15.0, Liveness.LIVE), (15.01, Liveness.STALE), (30.0, Liveness.STALE),
     (30.01, Liveness.DEAD), (1e308, Liveness.DEAD), (None, Liveness.DEAD)],
)  # fmt: skip
def test_classify(age: float | None, state: Liveness) -> None:
    assert Thresholds(15, 30).classify(age) is state


def test_recoveries_hash_parsing_tolerates_garbage_and_odd_worker_ids() -> None:
    rec = QueueRecoveries.parse(
        {
            "w:pod-1": "3",
            "t:pod-1": "2000",
            "w:a:b\x00\ud800": "1",
            "w:bad": "x",
            "last_at": "5000",
            "junk": "1",
        }
    )
    assert rec.by_worker == {"pod-1": 3, "a:b\x00\ud800": 1}
    assert rec.last_by_worker == {"pod-1": 2.0} and rec.last_at == 5.0 and rec.total == 4
    assert QueueRecoveries.parse({}).last_at is None


def test_report_lists_orphans_of_dead_and_unknown_workers_only() -> None:
    data = MonitorInput(
        heartbeats={"live": 99.0, "stale": 80.0, "dead": 10.0, "expired": 99.0},
        reported=frozenset({"live", "stale", "dead"}),  # "expired": its heartbeat hash is gone
        recoveries={
            "q1": QueueRecoveries({"dead": 2}, {"dead": 50.0}, 50.0),
            "q2": QueueRecoveries({"dead": 1, "other": 4}, {"dead": 60.0, "other": 40.0}, 60.0),
            "q3": QueueRecoveries({}, {}, None),
        },
        leases=[
            HeldLease("q1", "q1.b", "dead", 95.0),
            HeldLease("q1", "q1.a", "expired", 90.0),
            HeldLease("q2", "q2.x", "live", 120.0),
            HeldLease("q2", "q2.y", "stale", 101.0),
            HeldLease("q2", "q2.z", "", 90.0),
        ],
        now=100.0,
    )
    body = monitor_stats(data, Thresholds(15, 30))
    assert body["workers"] == {"live": 1, "stale": 1, "dead": 2, "total": 4}
    assert [o["queue"] for o in body["orphaned_leases"]] == ["q1", "q2"]
    assert [lease["task_id"] for lease in body["orphaned_leases"][0]["leases"]] == ["q1.a", "q1.b"]
    assert body["orphaned_leases"][0]["leases"][1]["lease_expired_seconds_ago"] == 5.0
    assert body["orphaned_leases"][1]["leases"] == [
        {"task_id": "q2.z", "worker": "", "lease_expired_seconds_ago": 10.0}
    ]
    recovered = body["leases_recovered"]
    assert recovered["total"] == 7 and recovered["last_recovery_at"] == 60.0
    assert recovered["by_worker"] == [
        {"worker": "dead", "recovered": 3, "last_recovery_at": 60.0},
        {"worker": "other", "recovered": 4, "last_recovery_at": 40.0},
    ]
    assert [q["queue"] for q in recovered["by_queue"]] == ["q1", "q2"]


def test_non_numbers_in_redis_read_as_absent() -> None:
    rec = QueueRecoveries.parse(
        {"w:a": "1e400", "w:b": "2.5", "w:c": "-1", "w:d": str(2**64), "w:e": "7", "t:a": "inf", "t:b": "nan",
         "t:c": "-5", "t:e": "1000", "last_at": "1e400"}
    )  # fmt: skip
    assert (rec.by_worker, rec.last_by_worker, rec.last_at) == ({"e": 7}, {"e": 1.0}, None)


def test_infinite_scores_never_reach_the_json() -> None:
    inf = float("inf")
    data = MonitorInput(
        heartbeats={"a": inf, "b": -inf, "c": float("nan")},
        reported=frozenset({"a", "b", "c"}),
        recoveries={},
        leases=[HeldLease("q", "q.x", "b", -inf), HeldLease("q", "q.y", "c", inf)],
        now=100.0,
    )
    body = monitor_stats(data, Thresholds(15, 30))
    assert [(w["state"], w["heartbeat_age_seconds"]) for w in body["by_worker"]] == [("dead", None)] * 3
    assert [lease["lease_expired_seconds_ago"] for lease in body["orphaned_leases"][0]["leases"]] == [
        None,
        0.0,
    ]
    json.dumps(body, allow_nan=False)
