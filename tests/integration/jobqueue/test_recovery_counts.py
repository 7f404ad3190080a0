"""recover.lua counts every lease it recovers, per worker and per queue, in the same atomic step: a dead
worker's leases recovered by name (the operator's and the supervisor's path), expired leases by the
reaper (scheduler, workers), poison tasks dead-lettered; recovering again counts nothing more."""

from __future__ import annotations

import pytest
from jq_testing import wait_until
from record_helpers import fetch

from jobqueue import Client
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.worker_monitor import read_monitor_input

pytestmark = pytest.mark.timeout(30)


def test_recoveries_counted_once_per_lease_per_worker(client: Client) -> None:
    for _ in range(3):
        client.enqueue("add", [1, 2], queue="rc")
    assert len(fetch(client, 2, queue="rc", worker="pod-a")) == 2
    assert len(fetch(client, 1, queue="rc", worker="pod-b")) == 1

    # pod-a is known dead: its leases are recovered by name, whatever their expiry; a second run finds none.
    assert client.recover_expired_leases(["rc"], worker_id="pod-a")["requeued"] == 2
    assert client.recover_expired_leases(["rc"], worker_id="pod-a")["requeued"] == 0
    rec = read_monitor_input(client).recoveries["rc"]
    assert rec.by_worker == {"pod-a": 2} and rec.last_at is not None
    assert rec.last_by_worker["pod-a"] == rec.last_at

    # pod-b's lease expires (lease_seconds=2 in the test settings) and the expiry reaper finds it.
    requeued: list[int] = []
    wait_until(
        lambda: requeued.append(client.recover_expired_leases(["rc"])["requeued"]) or sum(requeued), 15
    )
    assert sum(requeued) == 1
    assert client.recover_expired_leases(["rc"])["requeued"] == 0
    assert read_monitor_input(client).recoveries["rc"].by_worker == {"pod-a": 2, "pod-b": 1}
    assert client.redis.hget(client.queue_keys("rc").stats, "lost_leases") == "3"


def test_a_poison_task_dead_lettered_by_recovery_is_counted(client: Client) -> None:
    QueueAdmin(client).set_max_lost_leases("poison", 0)
    client.enqueue("add", [1, 2], queue="poison")
    [job] = fetch(client, 1, queue="poison", worker="pod-c")
    assert client.recover_expired_leases(["poison"], worker_id="pod-c")["dead_lettered"] == 1
    assert read_monitor_input(client).recoveries["poison"].by_worker == {"pod-c": 1}
    assert client.get_task(job.id).status.value == "FAILED"
