"""The recorder end to end: real Lua transitions in Redis, a real recorder, rows in a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from record_helpers import drain, fail, fetch, last_entry, make_recorder, recorded_up_to, succeed

from jobqueue import Client
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.recorder_progress import read_recorder_progress
from jobqueue.record.queries import RecordQueries
from jobqueue.record.recorder import Recorder
from jobqueue.record.settings import RecordSettings

pytestmark = pytest.mark.timeout(60)


def rows(pool: ConnectionPool, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        return conn.execute(query.encode(), params).fetchall()


def test_transitions_become_task_rows_events_and_dead_letters(
    client: Client, pg_pool: ConnectionPool
) -> None:
    ok = client.enqueue("add", [1, 2], {"z": 3}, priority="high", max_retries=2)
    flaky = client.enqueue("flaky", [], max_retries=1)
    doomed = client.enqueue("doomed", ["x"])
    cancelled = client.enqueue("later", countdown=3600)
    jobs = {j.id: j for j in fetch(client)}
    assert succeed(client, jobs[ok.id], "6") == 1
    assert fail(client, jobs[flaky.id], "OSError: disk", retry=True, traceback="Traceback...") == 2
    assert fail(client, jobs[doomed.id], "ValueError: bad", retry=False) == 3
    client.cancel(cancelled.id)
    [retried] = fetch(client)  # the flaky task's retry (zero backoff), second attempt
    assert succeed(client, retried, '"done"') == 1

    recorder = make_recorder(client, pg_pool)
    assert drain(recorder) == 13
    [task] = rows(
        pg_pool,
        "SELECT name, queue, priority, status, args, kwargs, result, attempts, max_retries, "
        "worker, duration_ms >= 0, completed_at >= started_at FROM tasks WHERE id = %s",
        ok.id,
    )
    assert task == ("add", "default", "high", "SUCCESS", [1, 2], {"z": 3}, 6, 1, 2, "w1", True, True)
    [task] = rows(
        pg_pool, "SELECT status, attempts, retries, error, result FROM tasks WHERE id = %s", flaky.id
    )
    assert task == ("SUCCESS", 2, 1, "OSError: disk", "done")
    [task] = rows(pg_pool, "SELECT status, dead_letter_reason, error FROM tasks WHERE id = %s", doomed.id)
    assert task == ("FAILED", "not_retryable", "ValueError: bad")
    [task] = rows(
        pg_pool,
        "SELECT status, cancel_reason, completed_at IS NOT NULL FROM tasks WHERE id = %s",
        cancelled.id,
    )
    assert task == ("CANCELLED", "user_requested", True)
    history = rows(
        pg_pool,
        "SELECT event, attempt FROM task_event_log WHERE task_id = %s ORDER BY entry_ms, entry_seq",
        flaky.id,
    )
    assert history == [("enqueued", None), ("started", 1), ("retrying", 1), ("started", 2), ("succeeded", 2)]
    [dead] = rows(pg_pool, "SELECT task_id, name, status, reason, error FROM dead_letters")
    assert dead == (doomed.id, "doomed", "FAILED", "not_retryable", "ValueError: bad")
    # The stream's position, committed with the rows: its last entry.
    stream = client.queue_keys("default").events
    assert recorded_up_to(pg_pool, stream) == last_entry(client, stream)
    recorder.close()


def test_replaying_a_batch_changes_nothing(client: Client, pg_pool: ConnectionPool) -> None:
    handles = [client.enqueue("add", [i]) for i in range(20)]
    for job in fetch(client, 20):
        succeed(client, job, "1")
    first = make_recorder(client, pg_pool)
    assert drain(first) == 60
    first.close()
    before = rows(pg_pool, "SELECT * FROM tasks ORDER BY id")
    # Positions lost (as if never stored): the next recorder re-reads the whole stream.
    rows(pg_pool, "DELETE FROM record_positions RETURNING stream")
    second = make_recorder(client, pg_pool)
    assert drain(second) == 60
    assert second.stats.recorded == 0 and second.stats.duplicates == 60
    assert rows(pg_pool, "SELECT * FROM tasks ORDER BY id") == before
    assert rows(pg_pool, "SELECT count(*) FROM task_event_log") == [(60,)]
    assert len(handles) == 20
    second.close()


class CrashBeforeCommit(Recorder):
    """A recorder that dies inside its write transaction, after the rows, before COMMIT."""

    def _write(self, events: Any, runs: Any) -> Any:
        session = self._ownership.session()
        with session.transaction():
            session.execute("SELECT 1")
            super()._write(events, runs)  # a nested transaction: a savepoint, released
            raise KeyboardInterrupt("crashed before COMMIT")


def test_a_recorder_crashing_before_commit_loses_and_doubles_nothing(
    client: Client, pg_pool: ConnectionPool
) -> None:
    for i in range(10):
        client.enqueue("add", [i])
    for job in fetch(client, 10):
        succeed(client, job, "1")
    options = RecordSettings(block_ms=50, discover_interval_seconds=0.01)
    crashing = CrashBeforeCommit(client.settings, options, client.redis, pg_pool, consumer="doomed")
    with pytest.raises(KeyboardInterrupt):
        crashing.run_once(block=False)
    stream = client.queue_keys("default").events
    # Neither the rows nor the position: one transaction.
    assert rows(pg_pool, "SELECT count(*) FROM tasks") == [(0,)]
    assert recorded_up_to(pg_pool, stream) is None
    # The dead recorder's session ends (as a killed process's does): its streams are free.
    crashing.close()
    survivor = make_recorder(client, pg_pool)
    assert drain(survivor) == 30
    assert (survivor.stats.recorded, survivor.stats.duplicates) == (30, 0)
    assert rows(pg_pool, "SELECT count(*) FROM task_event_log") == [(30,)]
    assert recorded_up_to(pg_pool, stream) == last_entry(client, stream)
    survivor.close()


def test_a_recorder_restarted_after_commit_reads_on_from_the_committed_position(
    client: Client, pg_pool: ConnectionPool
) -> None:
    client.enqueue("add", [1])
    first = make_recorder(client, pg_pool)
    assert drain(first) == 1
    first.close()
    client.enqueue("add", [2])
    restarted = make_recorder(client, pg_pool)
    assert drain(restarted) == 1  # only the new entry: nothing re-read
    assert (restarted.stats.recorded, restarted.stats.duplicates) == (1, 0)
    progress = read_recorder_progress(client, ["default"])
    assert progress is not None and progress.lag_seconds == 0.0 and progress.recorded == 2
    restarted.close()


def test_several_recorders_spread_the_streams_and_record_each_event_once(
    client: Client, pg_pool: ConnectionPool
) -> None:
    queues = ["q1", "q2", "q3"]
    expected = 0
    for round_ in range(5):
        for q in queues:
            for i in range(40):
                client.enqueue("add", [round_, i], queue=q)
            for job in fetch(client, 40, queue=q):
                succeed(client, job, "1")
            expected += 120
    # Three queues and the schedule run stream: four streams over two recorders.
    recorders = [make_recorder(client, pg_pool, batch_size=50, max_batch_size=50) for _ in range(2)]
    threads = [threading.Thread(target=r.run, daemon=True) for r in recorders]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: sum(r.stats.recorded for r in recorders) == expected, timeout=30)
        # Each owns its fair share once both are known to each other; no stream is owned twice.
        wait_until(lambda: [len(r.owned_streams) for r in recorders] == [2, 2], timeout=10)
        owned = [s for r in recorders for s in r.owned_streams]
        assert len(set(owned)) == 4
    finally:
        for r in recorders:
            r.stop()
        for t in threads:
            t.join(10)
    assert sum(r.stats.duplicates for r in recorders) == 0
    assert rows(
        pg_pool, "SELECT count(*), count(DISTINCT (stream, entry_ms, entry_seq)) FROM task_event_log"
    ) == [(expected, expected)]
    assert rows(pg_pool, "SELECT status, count(*) FROM tasks GROUP BY status") == [("SUCCESS", expected // 3)]


def test_a_recorder_behind_reads_larger_batches_and_returns_to_the_base_size(
    client: Client, pg_pool: ConnectionPool
) -> None:
    for i in range(500):
        client.enqueue("add", [i])
    for job in fetch(client, 500):
        succeed(client, job, "1")
    recorder = make_recorder(client, pg_pool, batch_size=100, max_batch_size=400)
    sizes = []
    while handled := recorder.run_once(block=False):
        sizes.append(handled)
    # 1,500 events: reads of 100, 200, 400, 400, 400 (full: doubling up to the cap), then the rest.
    assert sizes == [100, 200, 400, 400, 400]
    assert recorder.stats.recorded == 1500 and recorder.stats.batches == 5
    client.enqueue("add", [0])
    assert recorder.run_once(block=False) == 1  # a partial read: the next one asks for 100 again
    assert recorder._count == 100
    assert rows(
        pg_pool, "SELECT count(*), count(DISTINCT (stream, entry_ms, entry_seq)) FROM task_event_log"
    ) == [(1501, 1501)]


def test_events_trimmed_before_recording_are_counted_and_reported(
    client: Client, pg_pool: ConnectionPool, caplog: pytest.LogCaptureFixture
) -> None:
    small = Client(client.settings.model_copy(update={"events_max_length": 50}))
    small.enqueue("add", [0])
    recorder = make_recorder(small, pg_pool)
    assert drain(recorder) == 1
    # A backlog far beyond the stream cap (as during a long PostgreSQL outage): the oldest are trimmed.
    small.enqueue_many([make_request("add", [i]) for i in range(1, 500)])
    left = int(small.redis.xlen(small.queue_keys("default").events))
    assert left < 499
    recorded = drain(recorder)
    assert recorded == left
    assert recorder.stats.trimmed == 499 - left
    assert "trimmed (MAXLEN) before being recorded" in caplog.text
    small.close()


def test_a_recorder_started_before_any_queue_exists_waits_for_one(
    client: Client, pg_pool: ConnectionPool
) -> None:
    recorder = make_recorder(client, pg_pool)
    assert recorder.run_once(block=False) == 0
    client.enqueue("add", [1])
    time.sleep(0.05)  # the next queue discovery is due
    assert drain(recorder) == 1


def test_tasks_run_by_a_real_worker_are_recorded_with_their_retry_history(
    client: Client, pg_pool: ConnectionPool, start_worker: Callable[..., Any]
) -> None:
    recorder = make_recorder(client, pg_pool)
    flaky = client.enqueue("fail_times", [2], max_retries=3)
    doomed = client.enqueue("fail_with", ["value"], max_retries=5)
    fine = client.enqueue("add", [2, 3])
    start_worker("--pool", "thread", "--concurrency", "2")
    for handle in (flaky, fine):
        handle.result(timeout=20)
    wait_until(lambda: client.get_task(doomed.id).status.is_terminal, timeout=20)
    drain(recorder)
    queries = RecordQueries(pg_pool)
    history = queries.task_history(flaky.id)
    assert history is not None
    assert (history.task.status, history.task.attempts, history.task.retries, history.task.result) == (
        "SUCCESS",
        3,
        2,
        3,
    )
    assert [f.error for f in history.failures] == ["OSError: attempt 1 fails", "OSError: attempt 2 fails"]
    assert all("Traceback" in (f.data.get("traceback") or "") for f in history.failures)
    [dead] = queries.dead_letters(name="fail_with").items
    assert (dead.task_id, dead.status, dead.reason, dead.error) == (
        doomed.id,
        "FAILED",
        "not_retryable",
        "ValueError: bad input",
    )
    done = queries.get_task(fine.id)
    assert done is not None and (done.result, done.worker is not None, done.duration_ms is not None) == (
        5,
        True,
        True,
    )


def test_a_periodic_job_that_raises_does_not_stop_the_others_or_the_recording(
    client: Client, pg_pool: ConnectionPool, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("injected fault in a periodic job")

    def snapshot() -> None:
        ran.append("snapshot")

    recorder = Recorder(
        client.settings,
        RecordSettings(block_ms=50, discover_interval_seconds=0.01, retry_initial_seconds=0.05),
        client.redis,
        pg_pool,
        periodic=[(0.0, broken), (0.0, snapshot)],
    )
    client.enqueue("add", [1, 2])
    time.sleep(0.05)
    assert recorder.run_once(block=False) == 1
    assert ran == ["broken", "snapshot"]
    assert "periodic job broken failed unexpectedly" in caplog.text
    assert "injected fault in a periodic job" in caplog.text  # with its traceback


def test_message_headers_are_recorded_with_the_enqueued_event(
    client: Client, pg_pool: ConnectionPool
) -> None:
    # The trace context a producer attached stays findable in the durable record (a trace id to search).
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    plain = client.enqueue("add", [1], headers={"traceparent": traceparent})
    unique = client.enqueue("add", [2], unique=True, headers={"x-request-id": "r-7"})
    recorder = make_recorder(client, pg_pool)
    assert drain(recorder) == 2
    recorded = dict(
        rows(
            pg_pool,
            "SELECT task_id, data->>'headers' FROM task_event_log "
            "WHERE event = 'enqueued' AND task_id = ANY(%s)",
            [plain.id, unique.id],
        )
    )
    assert recorded == {
        plain.id: f'{{"traceparent":"{traceparent}"}}',
        unique.id: '{"x-request-id":"r-7"}',
    }


def test_a_queue_stream_gone_under_the_recorder_does_not_stop_the_recording(
    client: Client, pg_pool: ConnectionPool
) -> None:
    """A queue's event stream deleted (or its group lost with a primary that failed over before
    replicating it) made every read fail with NOGROUP, for every queue, until the recorder restarted."""
    client.enqueue("add", [1, 1], queue="gone")
    recorder = make_recorder(client, pg_pool)
    recording = threading.Thread(target=recorder.run, daemon=True)
    recording.start()
    try:
        wait_until(lambda: bool(rows(pg_pool, "SELECT id FROM tasks WHERE queue = 'gone'")), timeout=20)
        client.redis.delete(client.queue_keys("gone").events)
        later = [
            client.enqueue("add", [2, 2], queue="other").id,
            client.enqueue("add", [3, 3], queue="gone").id,
        ]
        wait_until(
            lambda: len(rows(pg_pool, "SELECT id FROM tasks WHERE id = ANY(%s)", later)) == 2, timeout=20
        )
    finally:
        recorder.stop()


class FailsFirstWrite(Recorder):
    """A recorder whose first write dies before COMMIT (while its read-ahead is in flight)."""

    failed = False

    def _write(self, events: Any, runs: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise KeyboardInterrupt("died while the next batch was being read")
        return super()._write(events, runs)


def test_a_recorder_behind_reads_the_next_batch_while_writing_and_drops_it_if_the_write_failed(
    client: Client, pg_pool: ConnectionPool
) -> None:
    client.enqueue_many([make_request("add", [i]) for i in range(500)])
    options = RecordSettings(block_ms=50, discover_interval_seconds=0.01, batch_size=100, max_batch_size=100)
    recorder = FailsFirstWrite(client.settings, options, client.redis, pg_pool)
    with pytest.raises(KeyboardInterrupt):
        recorder.run_once(block=False)
    # The read-ahead started from the end of the batch that did not commit: not used.
    sizes = []
    while handled := recorder.run_once(block=False):
        sizes.append(handled)
    assert sizes == [100] * 5
    assert recorder.stats.read_ahead == 5  # every batch after the first re-read came from a read-ahead
    assert (recorder.stats.recorded, recorder.stats.duplicates) == (500, 0)
    assert rows(
        pg_pool, "SELECT count(*), count(DISTINCT (stream, entry_ms, entry_seq)) FROM task_event_log"
    ) == [(500, 500)]
    recorder.close()
