"""The API's ring of replica samples per pool (the UI's sparklines): a change is sampled at once, a flat
line every interval, rings and pools bounded, garbage in a status is not a number."""

from __future__ import annotations

from typing import Any

from jobqueue_api.replica_history import ReplicaHistory


def view(current: Any, ready: Any = 0, desired: Any = None) -> dict[str, Any]:
    return {"status": {"current_replicas": current, "ready_replicas": ready, "desired_replicas": desired}}


def test_changes_sampled_at_once_flat_lines_every_interval() -> None:
    h = ReplicaHistory(size=5, interval=10)
    assert h.observe("p", view(1, 1, 1), 100.0) == [{"at": 100.0, "current": 1, "ready": 1, "desired": 1}]
    assert len(h.observe("p", view(1, 1, 1), 105.0)) == 1  # unchanged, within the interval
    assert [s["current"] for s in h.observe("p", view(3, 1, 3), 106.0)] == [1, 3]
    assert len(h.observe("p", view(3, 1, 3), 116.0)) == 3  # unchanged, but an interval later
    assert len(h.observe("p", view(3, 1, 3), 50.0)) == 4  # the clock went back: still sampled
    samples = h.observe("p", view(4), 51.0) and h.observe("p", view(5), 52.0)
    assert len(samples) == 5 and samples[-1]["current"] == 5 and samples[0]["at"] == 106.0


def test_pools_are_bounded_and_forgotten() -> None:
    h = ReplicaHistory(max_pools=2)
    h.observe("a", view(1), 1.0)
    h.observe("b", view(1), 1.0)
    h.observe("a", view(1), 2.0)  # "a" looked at last: "b" goes first
    h.observe("c", view(1), 3.0)
    assert len(h.observe("a", view(1), 30.0)) == 2  # kept: its sample at 1.0 and this one
    assert len(h.observe("b", view(1), 30.0)) == 1  # evicted: starts afresh
    h.forget("a")
    h.forget("never")
    assert h.observe("a", view(2), 4.0) == [{"at": 4.0, "current": 2, "ready": 0, "desired": None}]


def test_garbage_counts_read_as_unknown() -> None:
    h = ReplicaHistory()
    for bad in (None, "3", True, -1, 2**63, 1.5, [1], {"x": 1}):
        [sample] = h.observe(f"p{id(bad)}", view(bad, bad, bad), 1.0)
        assert (sample["current"], sample["ready"], sample["desired"]) == (0, 0, None)
    assert h.observe("empty", {}, 1.0) == [{"at": 1.0, "current": 0, "ready": 0, "desired": None}]
