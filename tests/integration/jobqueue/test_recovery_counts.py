"""recover.lua counts every lease it recovers, per worker and per queue, in the same atomic step: a dead
worker's leases recovered by name (the operator's and the supervisor's path), expired leases by the
reaper (scheduler, workers), poison tasks dead-lettered; recovering again counts nothing more."""

from __future__ import annotations

import time

import pytest
from jq_testing import wait_until
from record_helpers import fetch

from jobqueue import Client
from jobqueue.broker import lease_recovery
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.lease_recovery import RECOVERY_WORKERS_KEPT, build_recover
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.redis_io import run_script
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


def test_many_expired_leases_of_many_workers_in_one_call(client: Client) -> None:
    # One HINCRBY per worker and the stamps in chunks: 4,200 distinct workers in one call are 8,400
    # stamp values, past the ~8,000 that Lua's unpack() can pass to one HSET.
    client.enqueue_many([make_request("add", [1, 2], queue="many") for _ in range(4200)])
    for i in range(4200):
        assert len(fetch(client, 1, queue="many", worker=f"w{i}")) == 1
    leases = client.queue_keys("many").leases
    # Wait for the last lease to expire, so that one call finds them all.
    wait_until(lambda: client.redis.zcount(leases, "-inf", time.time() * 1000 - 100) == 4200, 30)
    assert int(run_script(client.redis, build_recover(client.settings, "many", limit=5000))[0]) == 4200
    rec = read_monitor_input(client).recoveries["many"]
    # The queue's count is exact; per worker, only the most recent RECOVERY_WORKERS_KEPT are kept (all
    # 4,200 were recovered at the same instant: which 750 stay is arbitrary), deleted in chunks too.
    kept = RECOVERY_WORKERS_KEPT * 3 // 4
    assert rec.total == 4200 and len(rec.by_worker) == kept
    assert rec.last_by_worker.keys() == rec.by_worker.keys()


def test_the_per_worker_counts_keep_the_most_recent_workers_and_the_total(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fleet whose pods churn: every pod a new worker id. Without a bound the hash grows per pod forever.
    monkeypatch.setattr(lease_recovery, "RECOVERY_WORKERS_KEPT", 4)
    for i in range(12):
        client.enqueue("add", [1, 2], queue="churn")
        assert len(fetch(client, 1, queue="churn", worker=f"pod-{i}")) == 1
        assert client.recover_expired_leases(["churn"], worker_id=f"pod-{i}")["requeued"] == 1
        [job] = fetch(client, 1, queue="churn", worker="survivor")  # the requeued task, out of the way
        client.redis.zrem(client.queue_keys("churn").leases, job.id)
    rec = read_monitor_input(client).recoveries["churn"]
    assert rec.total == 12
    fields = client.redis.hkeys(client.queue_keys("churn").recoveries)
    assert len(fields) <= 2 * 4 + 2  # w: and t: per worker, last_at, total
    assert "pod-11" in rec.by_worker and "pod-0" not in rec.by_worker  # the oldest go first


def test_a_hash_written_before_the_total_starts_it_from_its_worker_counts(client: Client) -> None:
    recoveries = client.queue_keys("older").recoveries
    client.redis.hset(recoveries, mapping={"w:old-pod": 5, "t:old-pod": 1, "last_at": 1})
    client.enqueue("add", [1, 2], queue="older")
    assert len(fetch(client, 1, queue="older", worker="new-pod")) == 1
    assert client.recover_expired_leases(["older"], worker_id="new-pod")["requeued"] == 1
    assert read_monitor_input(client).recoveries["older"].total == 6
