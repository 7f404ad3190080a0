"""Pure folding of stream entries into task deltas."""

from __future__ import annotations

import json

from jobqueue.record.events import (
    ScheduleRunEvent,
    StreamEvent,
    entries_from_reply,
    event_data,
    fold,
    parse_entry,
    parse_schedule_entry,
)


def ev(entry: str, event: str, **fields: object) -> StreamEvent:
    raw = {"id": "q.t1", "event": event, "ts": entry.partition("-")[0]}
    raw.update({k: str(v) for k, v in fields.items()})
    parsed = parse_entry("jq:{q}:events", "q", entry, raw)
    assert parsed is not None
    return parsed


def test_fold_applies_events_in_stream_order_whatever_order_they_arrive_in() -> None:
    events = [
        ev(
            "1000-0",
            "enqueued",
            status="QUEUED",
            name="add",
            priority="high",
            args="[1]",
            kwargs="{}",
            max_retries=2,
            eta=0,
        ),
        ev("1001-0", "started", token=1, worker="w1"),
        ev("1010-0", "retrying", token=1, error="E: x", backoff_ms=100, duration_ms=9),
        ev("1110-0", "started", token=2, worker="w2"),
        ev("1150-0", "succeeded", token=2, duration_ms=40, result="3"),
    ]
    [delta] = fold(reversed(events))
    assert (delta.status, delta.name, delta.priority, delta.args, delta.result) == (
        "SUCCESS",
        "add",
        "high",
        "[1]",
        "3",
    )
    assert (delta.attempts, delta.retries, delta.worker, delta.duration_ms) == (2, 1, "w2", 40)
    assert (delta.enqueued_at_ms, delta.started_at_ms, delta.completed_at_ms) == (1000, 1110, 1150)
    assert delta.last_position == (1150, 0)


def test_a_replay_clears_the_previous_outcome() -> None:
    [delta] = fold(
        [
            ev(
                "1-0",
                "dead_lettered",
                token=1,
                status="FAILED",
                reason="not_retryable",
                error="E",
                duration_ms=3,
            ),
            ev("2-0", "replayed", reset="1"),
        ]
    )
    assert (delta.status, delta.completed_at_ms, delta.dead_letter_reason, delta.replays) == (
        "QUEUED",
        None,
        None,
        1,
    )
    assert len(delta.dead_letters) == 1 and delta.error == "E"


def test_a_cancel_request_keeps_the_status() -> None:
    [delta] = fold([ev("5-0", "cancel_requested", reason="user_requested", mode="graceful")])
    assert (delta.status, delta.cancel_reason) == (None, "user_requested")


def test_malformed_entries_are_skipped_and_payloads_stay_out_of_event_data() -> None:
    assert parse_entry("s", "q", "1-0", {"event": "x"}) is None
    assert parse_entry("s", "q", "1-0", {"id": "q.t", "event": "x", "ts": "soon"}) is None
    assert parse_entry("s", "q", "1-0", None) is None
    e = ev("7-3", "enqueued", args="[1]", kwargs="{}", name="n", queue="q", status="QUEUED", eta=0)
    assert e.position == (7, 3)
    assert json.loads(event_data(e)) == {"status": "QUEUED", "eta": "0"}


def test_schedule_entries_become_runs_and_malformed_ones_are_skipped() -> None:
    fired = {
        "schedule": "s",
        "status": "fired",
        "fire": "1000",
        "ts": "1003",
        "task_id": "q.1",
        "replaced": "q.0",
    }
    assert parse_schedule_entry("k", "1-0", fired) == ScheduleRunEvent("s", 1000, "fired", 1003, "q.1", "q.0")
    missed = {"schedule": "s", "status": "missed", "fire": "1000", "ts": "9000", "missed": "7"}
    assert parse_schedule_entry("k", "2-0", missed) == ScheduleRunEvent("s", 1000, "missed", 9000, missed=7)
    assert (
        parse_schedule_entry("k", "3-0", {"schedule": "s", "fire": "x", "status": "fired", "ts": "1"}) is None
    )
    assert parse_schedule_entry("k", "4-0", None) is None


def test_an_unparsed_xreadgroup_reply_becomes_flat_entries() -> None:
    reply = [
        ["s1", [["1-0", ["id", "q.1", "event", "started", "ts", "1"]], ["1-1", None]]],
        ["s2", [["2-0", ["id", "q.2", "event", "purged", "ts", "2"]]]],
    ]
    assert entries_from_reply(reply) == [
        ("s1", "1-0", {"id": "q.1", "event": "started", "ts": "1"}),
        ("s1", "1-1", None),  # trimmed away before it was read again
        ("s2", "2-0", {"id": "q.2", "event": "purged", "ts": "2"}),
    ]
    assert entries_from_reply(None) == []  # a blocking read that timed out


def test_a_second_run_of_one_task_id_in_a_batch_detaches_the_first_runs_kept_events() -> None:
    first = [
        ev("1-0", "enqueued", status="QUEUED"),
        ev("2-0", "started", token=1),
        ev("3-0", "succeeded", token=1),
    ]
    second = [
        ev("4-0", "enqueued", status="QUEUED"),
        ev("5-0", "started", token=1),
        ev("6-0", "succeeded", token=1),
    ]
    [delta] = fold(first + second)
    # The row stands for the second run's 'enqueued' and 'succeeded'; the first run's need rows.
    assert sorted(e.entry_id for e in delta.detached) == ["1-0", "3-0"]
    assert (delta.enqueued_entry_ms, delta.last_position, delta.status) == (4, (6, 0), "SUCCESS")
    [single] = fold(first)
    assert single.detached == ()
