"""The load the autoscaler sees, read from a real Redis: paused queues count nothing, a rate-limited queue
counts only what its limiter lets start soon, in-flight and heartbeats come from the workers."""

from __future__ import annotations

import pytest

from jobqueue import Client
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue_operator.redis_state import read_pool_load

pytestmark = pytest.mark.timeout(30)


def test_pool_load_discounts_paused_and_rate_limited_queues(client: Client) -> None:
    for _ in range(100):
        client.enqueue("add", [1, 1], queue="free")
        client.enqueue("add", [1, 1], queue="limited")
        client.enqueue("add", [1, 1], queue="held")
    admin = QueueAdmin(client)
    admin.set_rate_limit("limited", limit=2, period=1, burst=3)
    admin.pause("held")

    load = read_pool_load(client, ["free", "limited", "held"], horizon_seconds=5)
    assert load.ready == 200  # the paused queue's tasks cannot start
    assert load.in_flight == 0
    # free: all 100; limited: the burst of 3 plus 2/s for 5 s.
    assert load.rate_limit_capacity == 100 + 3 + 10

    assert read_pool_load(client, ["free"], horizon_seconds=5).rate_limit_capacity is None
