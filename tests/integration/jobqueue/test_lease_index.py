"""Issue 14, scripts that scale and say what happened: the held-lease index, the reply codes of ack /
fail / release, and the promote script. Real Redis, the real scripts."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from jobqueue import Client, Settings, TaskStatus
from jobqueue.broker.completion import CompletionCode, parse_completion
from jobqueue.broker.completion_calls import build_ack, build_completion
from jobqueue.broker.lease_recovery import build_recover
from jobqueue.broker.leases import (
    Job,
    Outcome,
    OutcomeKind,
    build_fetch,
    build_heartbeat,
    build_release,
    parse_fetch,
)
from jobqueue.broker.promotion import build_promote, parse_promote
from jobqueue.broker.redis_io import run_script
from jobqueue.keys import QueueKeys
from jobqueue.retry import RetryPolicy

pytestmark = pytest.mark.timeout(30)


def fetch(client: Client, n: int, worker: str) -> list[Job]:
    return parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", n, worker))
    ).jobs


def held(client: Client, worker: str) -> set[str]:
    return set(client.redis.smembers(QueueKeys(client.settings.key_prefix, "default").held(worker)))


def succeed(client: Client, job: Job, worker: str = "w1") -> CompletionCode:
    outcome = Outcome(job.id, job.token, OutcomeKind.SUCCESS, "1")
    return parse_completion(
        run_script(client.redis, build_ack(client.settings, [(job, outcome)], worker_id=worker))
    )[0]


def test_a_workers_leases_are_indexed_by_fetch_and_leave_the_index_on_ack_fail_and_release(
    client: Client,
) -> None:
    for i in range(3):
        client.enqueue("a", [i])
    a, b, c = fetch(client, 3, "w1")
    assert held(client, "w1") == {a.id, b.id, c.id}
    ttl = client.redis.pttl(QueueKeys(client.settings.key_prefix, "default").held("w1"))
    assert 0 < ttl <= 2 * client.settings.lease_seconds * 1000  # outlives the leases, not forever
    assert succeed(client, a) == CompletionCode.SUCCEEDED
    error = Outcome(b.id, b.token, OutcomeKind.ERROR, error="ValueError: x")
    reply = run_script(client.redis, build_completion(client.settings, b, error, None, worker_id="w1"))
    assert parse_completion(reply) == [CompletionCode.FINISHED]
    reply = run_script(client.redis, build_release(client.settings, c, worker_id="w1"))
    assert parse_completion(reply) == [CompletionCode.RELEASED]
    assert held(client, "w1") == set()


def test_recovering_one_worker_takes_only_its_leases_in_bounded_calls(client: Client) -> None:
    for i in range(5):
        client.enqueue("a", [i])
    dead = {job.id for job in fetch(client, 3, "dead-pod")}
    alive = fetch(client, 2, "alive-pod")
    reply = run_script(client.redis, build_recover(client.settings, "default", "dead-pod", limit=2))
    assert [int(v) for v in reply] == [2, 0, 1, 0]  # two requeued, one left for the next call, none cancelled
    assert client.recover_expired_leases(["default"], worker_id="dead-pod") == {
        "requeued": 1,
        "dead_lettered": 0,
    }
    assert all(client.get_task(i).status == TaskStatus.QUEUED for i in dead)
    assert all(client.get_task(j.id).status == TaskStatus.RUNNING for j in alive)
    assert held(client, "dead-pod") == set() and held(client, "alive-pod") == {j.id for j in alive}


def test_a_stale_id_in_a_held_set_is_not_recovered_from_its_new_holder(settings: Settings) -> None:
    client = Client(settings.model_copy(update={"lease_seconds": 0.3}))
    h = client.enqueue("a")
    fetch(client, 1, "slow")
    time.sleep(0.35)
    # The expiry reaper leaves the id in slow's held set (a hint, checked on use) ...
    assert client.recover_expired_leases(["default"]) == {"requeued": 1, "dead_lettered": 0}
    [job] = fetch(client, 1, "fresh")
    assert h.id in held(client, "slow")
    # ... so recovering slow later must not take the task from fresh.
    assert client.recover_expired_leases(["default"], worker_id="slow") == {"requeued": 0, "dead_lettered": 0}
    record = client.get_task(h.id)
    assert (record.status, record.worker, record.attempts) == (TaskStatus.RUNNING, "fresh", job.token)
    client.close()


def test_heartbeat_indexes_leases_taken_before_the_index_existed(client: Client) -> None:
    client.enqueue("a")
    [job] = fetch(client, 1, "w1")
    keys = QueueKeys(client.settings.key_prefix, "default")
    client.redis.delete(keys.held("w1"))  # as a lease of the previous release would be: not indexed
    run_script(client.redis, build_heartbeat(client.settings, "default", "w1", [job]))
    assert held(client, "w1") == {job.id}
    assert client.recover_expired_leases(["default"], worker_id="w1") == {"requeued": 1, "dead_lettered": 0}


def test_each_stale_completion_says_why(settings: Settings) -> None:
    client = Client(settings.model_copy(update={"lease_seconds": 0.3}))
    h = client.enqueue("a")
    [job] = fetch(client, 1, "w1")
    time.sleep(0.35)
    client.recover_expired_leases(["default"])
    # Recovered, queued again, this attempt still the latest: its lease is lost.
    assert succeed(client, job) == CompletionCode.LEASE_LOST
    release = build_release(client.settings, job, worker_id="w1")
    assert parse_completion(run_script(client.redis, release)) == [CompletionCode.LEASE_LOST]
    [newer] = fetch(client, 1, "w2")
    # A newer attempt holds it: fenced, for every completion script.
    assert succeed(client, job) == CompletionCode.FENCED
    error = Outcome(job.id, job.token, OutcomeKind.ERROR, error="ValueError: x", retryable=True)
    fail = build_completion(client.settings, job, error, RetryPolicy(), worker_id="w1")
    assert parse_completion(run_script(client.redis, fail)) == [CompletionCode.FENCED]
    assert parse_completion(run_script(client.redis, release)) == [CompletionCode.FENCED]
    # Hostile tokens are fenced too, never a script error.
    for token in (10**30, -1, 0):
        assert succeed(client, replace(newer, token=token)) == CompletionCode.FENCED
    assert succeed(client, newer, worker="w2") == CompletionCode.SUCCEEDED
    # The task gone altogether: unknown.
    client.redis.delete(QueueKeys(client.settings.key_prefix, "default").task(h.id))
    assert succeed(client, newer, worker="w2") == CompletionCode.UNKNOWN_TASK
    assert parse_completion(run_script(client.redis, release)) == [CompletionCode.UNKNOWN_TASK]
    client.close()


def test_promote_moves_due_delayed_tasks_and_wakes_workers(client: Client) -> None:
    due = client.enqueue("a", countdown=0.05)
    later = client.enqueue("b", countdown=60)
    keys = QueueKeys(client.settings.key_prefix, "default")
    client.redis.delete(keys.wake)
    time.sleep(0.1)
    promotion = parse_promote(run_script(client.redis, build_promote(client.settings, "default")))
    assert promotion.promoted == 1 and 59_000 < promotion.next_due_ms <= 60_000
    assert client.get_task(due.id).status == TaskStatus.QUEUED
    assert client.get_task(later.id).status == TaskStatus.DELAYED
    assert client.redis.llen(keys.wake) == 1
    # Idempotent: nothing more is due.
    assert parse_promote(run_script(client.redis, build_promote(client.settings, "default"))).promoted == 0


def test_a_task_handed_to_a_parked_worker_is_indexed_as_that_workers_lease(client: Client) -> None:
    # A worker id with a space: the parked entry must still name its inbox and held set unambiguously.
    run_script(client.redis, build_fetch(client.settings, "default", 4, "parked w", 5000))  # nothing: parks
    h = client.enqueue("a")
    assert client.get_task(h.id).worker == "parked w"
    assert held(client, "parked w") == {h.id}
    assert client.recover_expired_leases(["default"], worker_id="parked w") == {
        "requeued": 1,
        "dead_lettered": 0,
    }


def test_recovering_one_worker_reads_only_its_own_tasks(client: Client) -> None:
    for i in range(53):
        client.enqueue("a", [i])
    fetch(client, 50, "busy-pod")
    fetch(client, 3, "dead-pod")
    client.redis.config_resetstat()  # commands run by scripts are counted too
    assert client.recover_expired_leases(["default"], worker_id="dead-pod") == {
        "requeued": 3,
        "dead_lettered": 0,
    }
    stats = client.redis.info("commandstats")
    # One task hash read per lease of the dead worker; the busy worker's 50 leases are never looked at.
    assert stats["cmdstat_hmget"]["calls"] == 3
    assert "cmdstat_zrange" not in stats


def test_lost_lease_history_is_bounded_like_retry_history(settings: Settings) -> None:
    client = Client(
        settings.model_copy(update={"lease_seconds": 0.2, "max_lost_leases": 100, "retry_history_max": 2})
    )
    h = client.enqueue("a")
    for _ in range(4):
        fetch(client, 1, "w1")
        time.sleep(0.25)
        assert client.recover_expired_leases(["default"]) == {"requeued": 1, "dead_lettered": 0}
    record = client.get_task(h.id)
    assert record.lost_leases == 4 and [e["attempt"] for e in record.retry_history] == [3, 4]
    client.close()


def test_a_stale_attempt_in_a_heartbeat_keeps_the_newer_lease_of_the_same_worker_indexed(
    client: Client,
) -> None:
    # Found while modelling heartbeat.lua for the state machine (test_transition_model.py): w1 stalled,
    # its lease expired and was recovered, w1 fetched the task again while the old attempt still ran, and
    # heartbeats both attempts. The stale one is lost, but dropping the id from w1's held set hid the
    # live lease from recovery.
    h = client.enqueue("a")
    keys = QueueKeys(client.settings.key_prefix, "default")
    [old] = fetch(client, 1, "w1")
    client.redis.zadd(keys.leases, {h.id: 1}, xx=True)  # expired (test helper: the score in the past)
    assert client.recover_expired_leases(["default"]) == {"requeued": 1, "dead_lettered": 0}
    [new] = fetch(client, 1, "w1")
    reply = run_script(client.redis, build_heartbeat(client.settings, "default", "w1", [old, new]))
    assert list(reply) == [h.id, ""]  # the old attempt is lost, the new one renewed
    assert held(client, "w1") == {h.id}
    assert client.recover_expired_leases(["default"], worker_id="w1") == {"requeued": 1, "dead_lettered": 0}
    assert client.get_task(h.id).status == TaskStatus.QUEUED
