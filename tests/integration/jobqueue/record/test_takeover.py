"""The read protocol: positions in PostgreSQL committed with the rows, streams owned through advisory
locks, a killed recorder's streams taken over, and the migration from the consumer-group protocol."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from record_helpers import drain, fetch, last_entry, make_recorder, recorded_up_to, succeed

from jobqueue import Client
from jobqueue.broker.enqueue import make_request
from jobqueue.errors import RecordUnavailable
from jobqueue.record.ownership import STREAM_LOCKS
from jobqueue.record.positions import entry_key

pytestmark = pytest.mark.timeout(120)

QUEUES = ["ta", "tb", "tc", "td"]


def rows(pool: ConnectionPool, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        return conn.execute(query.encode(), params).fetchall()


def execute(pool: ConnectionPool, statement: str) -> None:
    with pool.connection() as conn:
        conn.execute(statement.encode())


def start_recorder(client: Client, database_url: str, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "JOBQUEUE_REDIS_URL": client.settings.redis_url.get_secret_value(),
        "JOBQUEUE_KEY_PREFIX": client.settings.key_prefix,
        "JOBQUEUE_DATABASE_URL": database_url,
        "JOBQUEUE_RECORD_BLOCK_MS": "100",
        "JOBQUEUE_RECORD_DISCOVER_INTERVAL_SECONDS": "0.1",
        "JOBQUEUE_RECORD_BATCH_SIZE": "50",
        "JOBQUEUE_RECORD_MAX_BATCH_SIZE": "50",
        "JOBQUEUE_RECORD_LINGER_MS": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "jobqueue", "recorder", "--consumer", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def streams_owned_by(pool: ConnectionPool) -> dict[str, int]:
    """application_name of each recorder session -> the stream locks it holds."""
    return dict(
        rows(
            pool,
            "SELECT a.application_name, count(*)::int FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::int4::oid"
            " GROUP BY a.application_name",
            STREAM_LOCKS,
        )
    )


def in_transaction(pool: ConnectionPool, application_name: str) -> bool:
    return bool(
        rows(
            pool,
            "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND xact_start IS NOT NULL",
            application_name,
        )
    )


def assert_record_matches_positions(client: Client, pool: ConnectionPool) -> None:
    """In one snapshot: every stream's recorded entries are exactly its entries up to its position."""
    with pool.connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        positions = {
            s: (int(ms), int(seq))
            for s, ms, seq in conn.execute("SELECT stream, entry_ms, entry_seq FROM record_positions")
        }
        recorded = conn.execute("SELECT stream, entry_ms, entry_seq FROM task_event_log").fetchall()
    for q in QUEUES:
        stream = client.queue_keys(q).events
        mine = sorted((int(ms), int(seq)) for s, ms, seq in recorded if s == stream)
        assert len(mine) == len(set(mine)), f"{stream}: an entry recorded twice"
        up_to = positions.get(stream, (0, 0))
        expected = [entry_key(i) for i, _ in client.redis.xrange(stream) if entry_key(i) <= up_to]
        assert mine == expected, f"{stream}: rows and position disagree"


def test_a_recorder_killed_mid_batch_leaves_its_streams_to_the_other_and_nothing_doubles(
    client: Client, pg_pool: ConnectionPool, database_url: str
) -> None:
    for q in QUEUES:
        client.enqueue_many([make_request("add", [i], queue=q) for i in range(1500)])
    total = 1500 * len(QUEUES)
    # Each commit of a position waits a little: the kill below lands inside a transaction whose rows
    # are written and whose position is not yet.
    execute(
        pg_pool,
        "CREATE FUNCTION slow_position() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM pg_sleep(0.02); RETURN NEW; END $$",
    )
    execute(
        pg_pool,
        "CREATE TRIGGER slow_position BEFORE INSERT OR UPDATE ON record_positions"
        " FOR EACH ROW EXECUTE FUNCTION slow_position()",
    )
    doomed = start_recorder(client, database_url, "doomed")
    survivor = start_recorder(client, database_url, "survivor")
    try:
        # Both recorders own streams (the five, with the schedule run stream, spread between them).
        wait_until(
            lambda: (
                sorted(streams_owned_by(pg_pool).values()) == [2, 3]
                and rows(pg_pool, "SELECT count(*) FROM record_positions")[0][0] >= 2
            ),
            timeout=60,
        )
        wait_until(lambda: in_transaction(pg_pool, "jobqueue-recorder doomed"), timeout=30, interval=0.001)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        assert_record_matches_positions(client, pg_pool)  # the killed batch left no row behind
        # The survivor takes every stream over and records everything, each event once.
        wait_until(lambda: streams_owned_by(pg_pool) == {"jobqueue-recorder survivor": 5}, timeout=30)
        wait_until(lambda: rows(pg_pool, "SELECT count(*) FROM task_event_log")[0][0] >= total, timeout=90)
    finally:
        for process in (doomed, survivor):
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert rows(
        pg_pool, "SELECT count(*), count(DISTINCT (stream, entry_ms, entry_seq)) FROM task_event_log"
    ) == [(total, total)]
    assert rows(pg_pool, "SELECT count(*) FROM tasks") == [(total,)]
    for q in QUEUES:
        stream = client.queue_keys(q).events
        assert recorded_up_to(pg_pool, stream) == last_entry(client, stream)
    assert_record_matches_positions(client, pg_pool)


def test_a_stream_read_by_the_consumer_group_before_continues_from_its_oldest_pending_entry(
    client: Client, pg_pool: ConnectionPool
) -> None:
    handles = [client.enqueue("add", [i]) for i in range(10)]
    stream = client.queue_keys("default").events
    ids = [entry_id for entry_id, _ in client.redis.xrange(stream)]
    # A recorder of the group protocol: read 6 entries, recorded and acknowledged all but the 3rd and 5th.
    group = "jobqueue-recorder"
    client.redis.xgroup_create(stream, group, id="0")
    client.redis.xreadgroup(group, "old-pod", {stream: ">"}, count=6)
    client.redis.xack(stream, group, *[ids[i] for i in (0, 1, 3, 5)])
    # Another stream whose group has nothing pending, and one the old recorders never read.
    for i in range(4):
        client.enqueue("add", [i], queue="acked")
    acked = client.queue_keys("acked").events
    client.redis.xgroup_create(acked, group, id="0")
    read = client.redis.xreadgroup(group, "old-pod", {acked: ">"}, count=3)
    client.redis.xack(acked, group, *[entry_id for entry_id, _ in read[0][1]])
    client.enqueue("add", [0], queue="fresh")

    recorder = make_recorder(client, pg_pool)
    # default: from the 3rd entry (the oldest pending) on; acked: after the last delivered; fresh: all.
    assert drain(recorder) == 8 + 1 + 1
    recorded = {
        (s, f"{ms}-{seq}")
        for s, ms, seq in rows(pg_pool, "SELECT stream, entry_ms, entry_seq FROM task_event_log")
    }
    assert {i for s, i in recorded if s == stream} == set(ids[2:])
    assert len([i for s, i in recorded if s == acked]) == 1
    assert recorded_up_to(pg_pool, stream) == ids[-1]
    # The group is left as it was (see docs/record.md): older recorders of a rolling upgrade read on.
    assert client.redis.xpending(stream, group)["pending"] == 2
    # Once stored, the position wins over the group: a restart reads nothing again.
    recorder.close()
    client.enqueue("add", [99])
    again = make_recorder(client, pg_pool)
    assert drain(again) == 1 and again.stats.duplicates == 0
    again.close()
    assert len(handles) == 10


def test_a_recorder_whose_session_was_cut_owns_nothing_another_took_meanwhile(
    client: Client, pg_pool: ConnectionPool
) -> None:
    for i in range(5):
        client.enqueue("add", [i])
    for job in fetch(client, 5):
        succeed(client, job, "1")
    recorder = make_recorder(client, pg_pool)
    assert drain(recorder) == 15
    # Its session is killed from outside (a network cut, a failover): the locks go with it.
    rows(
        pg_pool,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name LIKE 'jobqueue-recorder%%'",
    )
    other = make_recorder(client, pg_pool)
    client.enqueue("add", [5])
    assert drain(other) == 1  # the streams were free: the other recorder owns them now
    client.enqueue("add", [6])
    # The first recorder fails on its dead session, opens another, and finds every stream owned.
    for _ in range(3):
        with contextlib.suppress(RecordUnavailable):
            recorder.run_once(block=False)
    assert recorder.owned_streams == []
    assert drain(other) == 1
    assert rows(
        pg_pool, "SELECT count(*), count(DISTINCT (stream, entry_ms, entry_seq)) FROM task_event_log"
    ) == [(17, 17)]
    other.close()
    recorder.close()
