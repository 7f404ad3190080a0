"""The worker registry forgets workers that died without deregistering once their last heartbeat is a
day old (broker/worker_registry.py), so listing workers costs what the live ones cost, not every worker
that was ever SIGKILLed or lost with its node."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from jq_testing import wait_until

from jobqueue import Client
from jobqueue.broker.worker_registry import WORKER_REGISTRY_RETENTION_SECONDS, publish_worker_record

pytestmark = pytest.mark.timeout(60)


def _registry_entry(client: Client, worker_id: str, age_seconds: float) -> None:
    """A registry entry whose worker's hash has expired: a worker that died without deregistering."""
    client.redis.zadd(client.global_keys.workers, {worker_id: int((time.time() - age_seconds) * 1000)})


def test_a_heartbeat_forgets_workers_dead_past_the_retention_and_keeps_recent_ones(client: Client) -> None:
    _registry_entry(client, "killed-two-days-ago", 2 * WORKER_REGISTRY_RETENTION_SECONDS)
    _registry_entry(client, "killed-an-hour-ago", 3600)  # still shown by the monitor as DEAD
    client.redis.hset(client.global_keys.worker_control("w1"), "drain", "hold")

    drain = publish_worker_record(client.redis, client.global_keys, "w1", {"status": "IDLE", "pid": 7}, 60)

    assert drain == "hold"
    registry = set(client.redis.zrange(client.global_keys.workers, 0, -1))
    assert registry == {"w1", "killed-an-hour-ago"}
    assert [w.id for w in client.list_workers()] == ["w1"]
    assert 0 < client.redis.ttl(client.global_keys.worker("w1")) <= 60


def test_publishing_without_a_control_hash_returns_no_drain(client: Client) -> None:
    assert publish_worker_record(client.redis, client.global_keys, "w2", {"status": "IDLE"}, 60) is None


def test_a_running_worker_prunes_the_registry_with_its_heartbeat(
    client: Client, start_worker: Callable[..., object]
) -> None:
    _registry_entry(client, "oom-killed-long-ago", WORKER_REGISTRY_RETENTION_SECONDS + 60)
    start_worker("--concurrency", "1")

    def only_the_live_worker() -> bool:
        ids = client.redis.zrange(client.global_keys.workers, 0, -1)
        return len(ids) == 1 and ids[0] != "oom-killed-long-ago"

    wait_until(only_the_live_worker, 30)
