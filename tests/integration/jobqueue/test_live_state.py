"""The broker's read-only views of live state (broker/live_state.py, broker/recorder_progress.py), which
the API's routes and its Prometheus collector use instead of Redis pipelines of their own."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from jobqueue import AsyncClient, Client, ValidationError
from jobqueue.broker.leases import build_fetch, parse_fetch
from jobqueue.broker.live_state import (
    live_snapshot,
    queue_counters,
    queue_counters_async,
    task_metrics_fields,
)
from jobqueue.broker.recorder_progress import read_recorder_progress
from jobqueue.broker.redis_io import run_script

pytestmark = pytest.mark.timeout(30)


def test_queue_counters_come_with_the_server_clock(client: Client) -> None:
    for i in range(3):
        client.enqueue("add", [i])
    before = time.time()
    counters = queue_counters(client, "default")
    assert counters.count("enqueued") == 3
    assert counters.count("succeeded") == 0  # never incremented: 0, not missing
    assert abs(counters.at - before) < 5  # the same host here, so the server clock is close


def test_the_async_read_matches_the_sync_one(client: Client) -> None:
    client.enqueue("add", [1])

    async def read() -> tuple[int, int]:
        async_client = AsyncClient(client.settings)
        try:
            read = await queue_counters_async(async_client, "default")
            with pytest.raises(ValidationError):
                await queue_counters_async(async_client, "bad name\x00")
            return read.count("enqueued"), read.count("started")
        finally:
            await async_client.close()

    assert asyncio.run(read()) == (1, 0)


def test_task_metrics_fields_of_every_queue_in_one_read(client: Client) -> None:
    key = client.queue_keys("default").task_metrics
    client.redis.hset(key, "run_count|add", "2")
    assert task_metrics_fields(client, ["default", "empty"]) == {
        "default": {"run_count|add": "2"},
        "empty": {},
    }


def test_live_snapshot_reads_depth_and_utilization_from_redis(client: Client) -> None:
    client.enqueue("add", [1], priority="high")
    client.enqueue("add", [2], priority="low")
    client.enqueue("add", [3], priority="low")
    snapshot = live_snapshot(client)
    [depth] = [d for d in snapshot.queues if d.queue == "default"]
    assert depth.ready == {"high": 1, "medium": 0, "low": 2}
    assert (snapshot.workers, snapshot.utilization) == (0, None)


def test_live_snapshot_counts_busy_slots_from_heartbeats(client: Client) -> None:
    """Heartbeat hashes as workers write them, one of them garbled: the garbled one counts no busy slot
    instead of failing the snapshot."""
    now_ms = int(time.time() * 1000)
    reports = {
        "w1": {"status": "ACTIVE", "concurrency": "4", "in_flight": json.dumps(["default.a", "default.b"])},
        "w2": {"status": "IDLE", "concurrency": "2", "in_flight": "[\x00"},
    }
    for worker_id, fields in reports.items():
        client.redis.hset(client.global_keys.worker(worker_id), mapping=fields)
        client.redis.zadd(client.global_keys.workers, {worker_id: now_ms})
    snapshot = live_snapshot(client)
    assert (snapshot.workers, snapshot.busy_slots, snapshot.total_slots) == (2, 2, 6)
    assert snapshot.utilization == pytest.approx(2 / 6)


def test_recorder_progress_over_the_queues_event_streams(client: Client) -> None:
    assert read_recorder_progress(client, []) is None
    client.enqueue("add", [1])
    assert read_recorder_progress(client, ["default"]) is None  # no recorder has recorded anything yet
    stream = client.queue_keys("default").events
    [(enqueued, _)] = client.redis.xrange(stream)
    # A recorder committed the stream up to its entry and mirrored the position (recorder.py _publish).
    client.redis.hset(client.global_keys.record_positions, stream, f"{enqueued} 1")
    progress = read_recorder_progress(client, ["default", "never-used"])
    assert progress is not None and (progress.lag_seconds, progress.recorded) == (0.0, 1)
    # Something to record that nobody read yet: a fetch appends its 'started' event.
    parse_fetch("default", run_script(client.redis, build_fetch(client.settings, "default", 1, "w")))
    time.sleep(0.01)
    lagging = read_recorder_progress(client, ["default"])
    assert lagging is not None and lagging.recorded == 1 and lagging.lag_seconds > 0
    # A position carried over from the consumer group with entries pending: a count not known.
    client.redis.hset(client.global_keys.record_positions, stream, f"{enqueued} ")
    unknown = read_recorder_progress(client, ["default"])
    assert unknown is not None and unknown.recorded is None
