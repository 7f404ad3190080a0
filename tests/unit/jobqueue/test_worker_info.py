"""Typed reads of what the wire carries as text: a worker's heartbeat hash, a task's cancel reason."""

from __future__ import annotations

import json

import pytest

from jobqueue.broker.task_read import TASK_FIELDS, parse_task
from jobqueue.errors import ValidationError
from jobqueue.models import CancelReason, TaskStatus, WorkerInfo, WorkerState, parse_cancel_reason

pytestmark = pytest.mark.timeout(10)

# The hash worker/runtime.py writes on every heartbeat.
REPORT = {
    "status": "ACTIVE",
    "host": "pod-a",
    "pid": "4242",
    "queues": "default,emails",
    "concurrency": "8",
    "in_flight": json.dumps(["default.t1", "emails.t2"]),
    "processed": "17",
    "started_at": "1700000000.5",
    "heartbeat_at": "1700000100.25",
}


def test_a_heartbeat_report_reads_back_typed() -> None:
    info = WorkerInfo.from_report("pod-a-1", REPORT, 1.5)
    assert info == WorkerInfo(
        id="pod-a-1",
        status=WorkerState.ACTIVE,
        heartbeat_age=1.5,
        host="pod-a",
        pid=4242,
        queues=("default", "emails"),
        concurrency=8,
        in_flight=("default.t1", "emails.t2"),
        processed=17,
        started_at=1700000000.5,
        heartbeat_at=1700000100.25,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "RUNNING\x00"),
        ("status", "\ud800"),
        ("pid", "12.5"),
        ("pid", "\x00"),
        ("concurrency", "lots"),
        ("in_flight", "[not json"),
        ("in_flight", json.dumps({"a": 1})),
        ("in_flight", "[" * 10_000 + "]" * 10_000),  # deeper than json.loads recurses
        ("processed", "1e400"),
        ("started_at", "yesterday"),
    ],
)
def test_a_garbled_field_reads_as_unknown_and_keeps_the_rest(field: str, value: str) -> None:
    """Workers of another version (or a hand edit) must not break the listing of every worker."""
    info = WorkerInfo.from_report("w", {**REPORT, field: value}, 0.0)
    assert info.id == "w" and info.host == "pod-a"
    if field == "status":
        assert info.status is WorkerState.UNKNOWN
    if field == "in_flight":
        assert info.in_flight == ()


def test_huge_numbers_stay_exact() -> None:
    info = WorkerInfo.from_report("w", {**REPORT, "processed": str(10**30), "pid": str(2**63)}, 0.0)
    assert (info.processed, info.pid) == (10**30, 2**63)


def test_an_empty_report_is_an_unknown_idle_worker() -> None:
    info = WorkerInfo.from_report("w", {}, 3.0)
    assert (info.status, info.queues, info.in_flight, info.concurrency, info.pid) == (
        WorkerState.UNKNOWN,
        (),
        (),
        0,
        None,
    )


def test_cancel_reason_is_parsed_at_the_boundary() -> None:
    assert parse_cancel_reason("dependency_failed") is CancelReason.DEPENDENCY_FAILED
    assert parse_cancel_reason(CancelReason.OTHER) is CancelReason.OTHER
    for bad in ("USER_REQUESTED", "other\x00", "\udc80", ""):
        with pytest.raises(ValidationError) as caught:
            parse_cancel_reason(bad)
        assert caught.value.field == "reason"


def _task(**fields: str) -> list[str | None]:
    base = {"status": TaskStatus.CANCELLED.value, "name": "t", "priority": "high"}
    return [{**base, **fields}.get(name) for name in TASK_FIELDS]


def test_a_stored_cancel_reason_reads_as_the_enum_and_serializes_as_before() -> None:
    record = parse_task("default.abc", _task(cancel_reason="user_requested"))
    assert record is not None and record.cancel_reason is CancelReason.USER_REQUESTED
    assert record.to_json()["cancel_reason"] == "user_requested"  # the REST JSON is unchanged
    assert json.dumps(record.to_json()["cancel_reason"]) == '"user_requested"'
    missing = parse_task("default.abc", _task())
    assert missing is not None and missing.cancel_reason is None


def test_a_cancel_reason_written_outside_jobqueue_reads_as_other() -> None:
    record = parse_task("default.abc", _task(cancel_reason="because\x00"))
    assert record is not None and record.cancel_reason is CancelReason.OTHER
