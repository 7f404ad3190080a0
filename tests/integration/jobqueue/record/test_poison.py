"""Issue 15, defect 1: an entry PostgreSQL refuses is parked, never a stall of the whole record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from psycopg_pool import ConnectionPool
from record_helpers import add_event, drain, fetch, last_entry, make_recorder, recorded_up_to, succeed

from jobqueue import Client
from jobqueue.errors import RecordUnavailable
from jobqueue.record.events import ScheduleRunEvent, StreamEvent
from jobqueue.record.poison import Parsed, write_or_park
from jobqueue.record.writer import BatchResult

pytestmark = pytest.mark.timeout(60)


def rows(pool: ConnectionPool, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        return conn.execute(query.encode(), params).fetchall()


def test_poison_entries_are_parked_and_everything_else_recorded(
    client: Client, pg_pool: ConnectionPool
) -> None:
    good = [client.enqueue("add", [i]) for i in range(6)]
    # As an older producer (or a hand-made XADD) wrote them: JSON that jsonb refuses.
    nul = "default.0190a1b2c3d47e8f9a0b1c2d3e4f5a6b"
    surrogate = "default.0190a1b2c3d47e8f9a0b1c2d3e4f5a6c"
    ts = int(client.redis.time()[0]) * 1000
    add_event(client, "default", nul, "enqueued", ts, name="x", args='["a\\u0000b"]', kwargs="{}")
    add_event(client, "default", surrogate, "enqueued", ts, name="x", args='["\\ud800"]', kwargs="{}")
    more = [client.enqueue("add", [i]) for i in range(6, 9)]
    for job in fetch(client, 20):
        assert succeed(client, job, "1") == 1

    recorder = make_recorder(client, pg_pool)
    drain(recorder)

    recorded = {r[0] for r in rows(pg_pool, "SELECT id FROM tasks WHERE status = 'SUCCESS'")}
    assert recorded == {h.id for h in good + more}
    parked = rows(pg_pool, "SELECT task_id, reason, fields FROM record_rejects ORDER BY entry_seq, entry_ms")
    assert sorted(p[0] for p in parked) == [nul, surrogate]
    assert all(p[1] for p in parked) and any("\\u0000" in p[2] for p in parked)
    assert recorder.stats.rejected == 2
    assert client.redis.get(client.global_keys.record_rejects) == "2"
    stream = client.queue_keys("default").events
    assert recorded_up_to(pg_pool, stream) == last_entry(client, stream)  # past the parked entries
    # A later batch is recorded as usual.
    late = client.enqueue("add", [99])
    drain(recorder)
    assert rows(pg_pool, "SELECT status FROM tasks WHERE id = %s", late.id) == [("QUEUED",)]


def test_bisection_parks_only_the_refused_entries_and_keeps_stream_order() -> None:
    poison = {3, 11}
    written: list[int] = []
    parked: list[int] = []

    def event(i: int) -> Parsed:
        entry_id = f"1-{i}"
        return Parsed("s", entry_id, {}, StreamEvent("s", entry_id, "q", "t", "started", 1, {}, (1, i)))

    def write(events: Sequence[StreamEvent], runs: Sequence[ScheduleRunEvent]) -> BatchResult:
        batch = [e.position[1] for e in events]
        if poison & set(batch):
            raise ValueError("refused")
        written.extend(batch)
        return BatchResult(len(batch), 0)

    items = [event(i) for i in range(16)]
    tally = write_or_park(write, lambda p, reason: parked.append(int(p.entry_id[2:])), items)
    assert parked == [3, 11]
    assert written == [i for i in range(16) if i not in poison]
    assert (tally.inserted, tally.rejected) == (14, 2)


def test_an_outage_during_bisection_is_not_mistaken_for_poison() -> None:
    def write(events: Sequence[StreamEvent], runs: Sequence[ScheduleRunEvent]) -> BatchResult:
        raise RecordUnavailable("PostgreSQL unavailable")

    item = Parsed("s", "1-1", {}, StreamEvent("s", "1-1", "q", "t", "started", 1, {}, (1, 1)))
    with pytest.raises(RecordUnavailable):
        write_or_park(write, lambda p, reason: pytest.fail("parked"), [item, item])


def test_events_never_carry_large_results(client: Client, pg_pool: ConnectionPool) -> None:
    small, large = client.enqueue("add", [1]), client.enqueue("add", [2])
    settings = client.settings.model_copy(update={"max_event_result_bytes": 100})
    big = '"' + "x" * 500 + '"'
    jobs = {j.id: j for j in fetch(client, 2)}
    acker = Client(settings)
    try:
        assert succeed(acker, jobs[small.id], "3") == 1
        assert succeed(acker, jobs[large.id], big) == 1
    finally:
        acker.close()
    entries = client.redis.xrange(client.queue_keys("default").events)
    done = {f["id"]: f for _, f in entries if f["event"] == "succeeded"}
    assert done[small.id]["result"] == "3"
    assert "result" not in done[large.id] and done[large.id]["result_omitted"] == str(len(big))
    assert client.get_task(large.id).result == "x" * 500  # whole in the task hash, for its TTL
    drain(make_recorder(client, pg_pool))
    assert rows(pg_pool, "SELECT result FROM tasks WHERE id = %s", large.id) == [(None,)]


def test_a_malformed_entry_is_skipped_without_logging_its_payload(
    client: Client, pg_pool: ConnectionPool, caplog: pytest.LogCaptureFixture
) -> None:
    client.redis.sadd(client.global_keys.queues, "default")
    client.redis.xadd(client.queue_keys("default").events, {"id": "x", "args": '["secret"]'})
    drain(make_recorder(client, pg_pool))
    assert "skipping malformed event" in caplog.text and "args" in caplog.text
    assert "secret" not in caplog.text
