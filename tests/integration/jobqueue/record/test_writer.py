"""write_batch against a real PostgreSQL: the direct path (nothing recorded before) and the exact path
(a replay, a partial replay, batches of several recorders committed out of order) leave the same record."""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg_pool import ConnectionPool
from record_helpers import add_event, fail, fetch, succeed

from jobqueue import Client
from jobqueue.record.events import KEPT_ON_TASK_ROW, StreamEvent, event_data, parse_entry
from jobqueue.record.writer import write_batch

pytestmark = pytest.mark.timeout(60)

# Every column but recorded_at (the time of the write, which differs by construction).
TASK_STATE = """SELECT id, queue, name, priority, status, args, kwargs, result, error, traceback, attempts,
    max_retries, retries, lost_leases, replays, parents, worker, cancel_reason, dead_letter_reason, timeout,
    soft_timeout, enqueued_at, eta, started_at, completed_at, duration_ms, last_event_ms, last_event_seq
    FROM tasks ORDER BY id"""
EVENTS = (
    "SELECT stream, entry_ms, entry_seq, task_id, event, ts, attempt, worker, error, data FROM task_event_log"
)
DEAD = "SELECT task_id, dead_at, status, reason, error, attempt, replayed_at FROM dead_letters ORDER BY 1, 2"


def rows(pool: ConnectionPool, query: str) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        return conn.execute(query.encode()).fetchall()


def clear(pool: ConnectionPool) -> None:
    with pool.connection() as conn:
        conn.execute("TRUNCATE tasks, task_events, dead_letters")


def record(pool: ConnectionPool, events: list[StreamEvent]) -> tuple[int, int]:
    with pool.connection() as conn:
        result = write_batch(conn, events)
    return result.inserted, result.duplicates


def snapshot(pool: ConnectionPool) -> tuple[list[Any], list[Any], list[Any]]:
    return rows(pool, TASK_STATE), sorted(rows(pool, EVENTS)), rows(pool, DEAD)


@pytest.fixture
def events(client: Client) -> list[StreamEvent]:
    """Real transitions: 6 tasks succeed, 2 are retried then dead-lettered, one of those is replayed and
    succeeds, 2 stay queued."""
    for i in range(8):
        client.enqueue("add", [i], max_retries=1)
    jobs = fetch(client, 8)
    for job in jobs[:6]:
        succeed(client, job, "1")
    for job in jobs[6:]:
        fail(client, job, "ValueError: bad", retry=True)
    retried = fetch(client, 2)
    assert {j.id for j in retried} == {j.id for j in jobs[6:]}
    for job in retried:
        fail(client, job, "ValueError: bad again", retry=False)
    client.replay_dead_letter(retried[0].id)
    [job] = fetch(client, 1)
    succeed(client, job, "2")
    client.enqueue("add", [8])
    client.enqueue("add", [9])
    stream = client.queue_keys("default").events
    out = [
        parse_entry(stream, "default", entry_id, fields) for entry_id, fields in client.redis.xrange(stream)
    ]
    assert all(e is not None for e in out)
    return [e for e in out if e is not None]


def test_out_of_order_and_replayed_batches_leave_the_same_record_as_one_in_order_write(
    events: list[StreamEvent], pg_pool: ConnectionPool
) -> None:
    assert record(pg_pool, events) == (len(events), 0)  # the direct path
    expected = snapshot(pg_pool)
    assert expected[0][0][4] is not None and len(expected[2]) == 2

    # The same batch again: nothing changes, every entry is a duplicate.
    assert record(pg_pool, events) == (0, len(events))
    assert snapshot(pg_pool) == expected

    # Several recorders committing out of order: thirds in reverse order, each recorded once.
    clear(pg_pool)
    third = len(events) // 3
    parts = [events[:third], events[third : 2 * third], events[2 * third :]]
    for part in reversed(parts):
        assert record(pg_pool, part) == (len(part), 0)
    assert snapshot(pg_pool) == expected

    # Interleaved: every other event first, then all of them (half are replays, half new). The final
    # status, counters, spec and outcome follow the newest event; fields only an older event of the
    # late batch set (the worker and start time of the last attempt) may keep the newer batch's
    # values: the row keeps one stream position, not one per field (documented in docs/record.md).
    clear(pg_pool)
    assert record(pg_pool, events[1::2]) == (len(events[1::2]), 0)
    assert record(pg_pool, events) == (len(events[::2]), len(events[1::2]))
    tasks, history, dead = snapshot(pg_pool)
    assert (history, dead) == expected[1:]
    columns = TASK_STATE.split("FROM", maxsplit=1)[0].removeprefix("SELECT").split(",")
    settled = [i for i, name in enumerate(columns) if name.strip() not in ("worker", "started_at")]
    assert [[row[i] for i in settled] for row in tasks] == [[row[i] for i in settled] for row in expected[0]]


def test_a_task_recorded_by_a_later_event_first_gets_its_spec_without_losing_its_state(
    events: list[StreamEvent], pg_pool: ConnectionPool
) -> None:
    enqueued = [e for e in events if e.event == "enqueued"]
    later = [e for e in events if e.event != "enqueued"]
    record(pg_pool, later)
    [(status_before,)] = rows(pg_pool, "SELECT count(*) FROM tasks WHERE name IS NULL")
    assert status_before == 8  # the 8 tasks that ran; the 2 still queued have no later event
    assert record(pg_pool, enqueued) == (len(enqueued), 0)  # the direct insert conflicts: exact path
    statuses = dict(rows(pg_pool, "SELECT status, count(*) FROM tasks GROUP BY status"))
    assert statuses == {"SUCCESS": 7, "FAILED": 1, "QUEUED": 2}
    assert rows(pg_pool, "SELECT count(*) FROM tasks WHERE name IS NULL OR args IS NULL") == [(0,)]


def test_events_kept_on_task_rows_are_rebuilt_exactly_as_event_rows(
    events: list[StreamEvent], pg_pool: ConnectionPool
) -> None:
    """'enqueued' and 'succeeded' have no task_events row (migration 0004); task_event_log rebuilds each
    as the row it used to be, at its own stream position."""
    record(pg_pool, events)
    assert logged(pg_pool) == as_logged(events)
    kinds = {r[0] for r in rows(pg_pool, "SELECT DISTINCT event FROM task_events")}
    assert kinds and not kinds & KEPT_ON_TASK_ROW


def as_logged(events: list[StreamEvent]) -> list[tuple[Any, ...]]:
    """The task_event_log rows that ``events`` stand for, sorted."""
    return sorted(
        (
            e.stream,
            *e.position,
            e.task_id,
            e.event,
            e.ts_ms,
            e.int_field("token"),
            e.text_field("worker"),
            e.text_field("error"),
            e.int_field("duration_ms"),
            json.loads(event_data(e)),
        )
        for e in events
    )


def logged(pool: ConnectionPool) -> list[tuple[Any, ...]]:
    return sorted(
        rows(
            pool,
            """SELECT stream, entry_ms, entry_seq, task_id, event, (extract(epoch FROM ts) * 1000)::bigint,
                      attempt, worker, error, duration_ms, data FROM task_event_log""",
        )
    )


def test_a_task_id_enqueued_again_after_its_first_run_expired_keeps_both_runs_in_the_log(
    client: Client, pg_pool: ConnectionPool
) -> None:
    """A task id is new for every task the public API creates, but the enqueue script accepts an id
    again once its hash expired from Redis (a second run under one id). The row then stands for the
    newest run, and the other run's 'enqueued' and 'succeeded' are kept as event rows: however the
    batches are cut and ordered, the log is every entry once."""
    for run, ms in ((1, 1_000), (2, 5_000)):
        add_event(client, "default", "default.reused", "enqueued", ms, status="QUEUED", name="add",
                  args=f"[{run}]", kwargs="{}", max_retries=run)  # fmt: skip
        add_event(client, "default", "default.reused", "started", ms + 1, token=1, worker=f"w{run}")
        add_event(client, "default", "default.reused", "succeeded", ms + 3, token=1, duration_ms=2,
                  result=str(run))  # fmt: skip
    stream = client.queue_keys("default").events
    parsed = [parse_entry(stream, "default", i, f) for i, f in client.redis.xrange(stream)]
    events = [e for e in parsed if e is not None]
    assert [e.event for e in events] == ["enqueued", "started", "succeeded"] * 2
    expected = as_logged(events)
    cuts: list[list[list[StreamEvent]]] = [
        [events],  # one batch
        [[e] for e in events],  # one batch per event
        [events[:3], events[3:]],  # one batch per run
        [events[3:], events[:3]],  # recorders committing the runs in reverse order
        [events[1:5], events[:2], events[4:]],  # overlapping batches: replays of both kinds
    ]
    for batches in cuts:
        clear(pg_pool)
        for batch in batches:
            record(pg_pool, batch)
        assert logged(pg_pool) == expected, [[e.event for e in b] for b in batches]
        assert record(pg_pool, events) == (0, len(events))  # everything again: all duplicates
        assert logged(pg_pool) == expected


@pytest.mark.parametrize("kind", sorted(KEPT_ON_TASK_ROW))
def test_a_replay_of_events_kept_on_task_rows_alone_changes_nothing(
    kind: str, events: list[StreamEvent], pg_pool: ConnectionPool
) -> None:
    """A batch of only such events has no event row whose key refuses it: the task rows do."""
    record(pg_pool, events)
    expected = snapshot(pg_pool)
    only = [e for e in events if e.event == kind]
    assert only
    assert record(pg_pool, only) == (0, len(only))
    assert snapshot(pg_pool) == expected
    # Mixed with new events of other tasks: the new ones are recorded, the replayed ones skipped.
    clear(pg_pool)
    first, rest = events[: len(events) // 2], events[len(events) // 2 :]
    record(pg_pool, first)
    replayed = [e for e in first if e.event == kind]
    assert record(pg_pool, replayed + rest) == (len(rest), len(replayed))
    assert snapshot(pg_pool) == expected
