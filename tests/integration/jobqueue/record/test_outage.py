"""PostgreSQL stopped under load: the hot path goes on, events wait in Redis, and once PostgreSQL is back
every transition is recorded exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool, PoolTimeout
from record_helpers import last_entry, make_recorder, recorded_up_to

from jobqueue import Client
from jobqueue.embedded.postgres_server import PostgresServer

pytestmark = pytest.mark.timeout(240)


class Producer(threading.Thread):
    """Enqueues batches of tasks at a steady rate until stopped; counts what it enqueued and when."""

    def __init__(self, client: Client, per_second: int) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.per_second = per_second
        self.enqueued: list[float] = []
        self.errors: list[BaseException] = []
        self._halt = threading.Event()

    def run(self) -> None:
        batch = max(1, self.per_second // 20)
        while not self._halt.wait(0.05):
            try:
                for i in range(batch):
                    self.client.enqueue("add", [i, 1])
                    self.enqueued.append(time.monotonic())
            except BaseException as exc:
                self.errors.append(exc)
                return

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def _rows(pool: ConnectionPool, query: str) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        return conn.execute(query.encode()).fetchall()


def _count_is(pool: ConnectionPool, query: str, expected: int) -> bool:
    try:
        return _rows(pool, query) == [(expected,)]
    except (PoolTimeout, psycopg.OperationalError):
        return False  # the test's own connection may still be reconnecting


@pytest.mark.parametrize(
    "outage_seconds", [pytest.param(5.0, id="5s"), pytest.param(30.0, id="30s", marks=pytest.mark.slow)]
)
def test_postgres_outage_under_load_records_every_transition_once(
    outage_seconds: float,
    client: Client,
    pg_pool: ConnectionPool,
    postgres_server: PostgresServer,
    start_worker: Callable[..., Any],
    request: pytest.FixtureRequest,
) -> None:
    recorder = make_recorder(client, pg_pool, retry_max_seconds=1.0, block_ms=200)
    request.addfinalizer(recorder.stop)
    recorder_thread = threading.Thread(target=recorder.run, daemon=True)
    recorder_thread.start()
    worker = start_worker("--pool", "thread", "--concurrency", "8")
    producer = Producer(Client(client.settings), per_second=200)
    producer.start()
    stream = client.queue_keys("default").events
    stats_key = client.queue_keys("default").stats
    try:
        time.sleep(2.0)
        postgres_server.stop()
        outage_start = time.monotonic()
        succeeded_before = int(client.redis.hget(stats_key, "succeeded") or 0)
        time.sleep(outage_seconds)
        # The hot path never waited on PostgreSQL: tasks were enqueued and completed throughout.
        # (200/s offered; the bar is lower because the machine is shared and this is about "not stalled".)
        during = [t for t in producer.enqueued if t >= outage_start]
        assert len(during) >= 50 * outage_seconds, len(during)
        succeeded_during = int(client.redis.hget(stats_key, "succeeded") or 0) - succeeded_before
        assert succeeded_during >= 50 * outage_seconds, succeeded_during
        recorded_during = recorder.stats.recorded
        wait_until(lambda: recorder.stats.write_retries > 0, timeout=10)
        assert recorder.stats.recorded == recorded_during
        postgres_server.start()
        restarted = time.monotonic()
        # Recording resumes within seconds of PostgreSQL coming back, whatever the outage's length.
        wait_until(lambda: recorder.stats.recorded > recorded_during, timeout=15)
        resumed_after = time.monotonic() - restarted
        assert resumed_after < 10, resumed_after
    finally:
        producer.stop()
        if not postgres_server.running:
            postgres_server.start()
    assert not producer.errors
    total = len(producer.enqueued)
    wait_until(lambda: int(client.redis.hget(stats_key, "succeeded") or 0) == total, timeout=90)
    # Every transition: enqueued, started, succeeded per task.
    wait_until(lambda: _count_is(pg_pool, "SELECT count(*) FROM task_event_log", 3 * total), timeout=90)
    recorder.stop()
    recorder_thread.join(10)
    worker.terminate()

    in_stream = {entry_id for entry_id, _ in client.redis.xrange(stream)}
    assert len(in_stream) == 3 * total  # the stream was not trimmed: nothing could be lost that way
    recorded = {f"{ms}-{seq}" for ms, seq in _rows(pg_pool, "SELECT entry_ms, entry_seq FROM task_event_log")}
    assert recorded == in_stream
    assert _rows(pg_pool, "SELECT status, count(*) FROM tasks GROUP BY status") == [("SUCCESS", total)]
    assert recorded_up_to(pg_pool, stream) == last_entry(client, stream)
    assert recorder.stats.recorded == 3 * total
