"""One integration test (at least) per Lua script, against a real Redis server."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import replace

import pytest

from jobqueue import AsyncClient, Client, Priority, Settings, TaskStatus
from jobqueue.broker.batch_enqueue import plan_enqueue
from jobqueue.broker.completion import CompletionCode, parse_completion
from jobqueue.broker.completion_calls import build_ack, build_completion
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import (
    Job,
    Outcome,
    OutcomeKind,
    build_fetch,
    build_heartbeat,
    build_release,
    parse_fetch,
    parse_heartbeat,
)
from jobqueue.broker.redis_io import run_script, run_scripts
from jobqueue.broker.watch import watch, watch_async
from jobqueue.keys import QueueKeys
from jobqueue.retry import RetryPolicy

pytestmark = pytest.mark.timeout(30)


def fetch(client: Client, n: int = 10, queue: str = "default", worker: str = "w1") -> list[Job]:
    reply = run_script(client.redis, build_fetch(client.settings, queue, n, worker))
    return parse_fetch(queue, reply).jobs


def complete(client: Client, job: Job, outcome: Outcome, policy: RetryPolicy | None = None) -> CompletionCode:
    call = build_completion(client.settings, job, outcome, policy, worker_id="w1")
    return parse_completion(run_script(client.redis, call))[0]


def test_enqueue_creates_a_queued_task(client: Client) -> None:
    h = client.enqueue("add", [1, 2], {"z": 3})
    record = client.get_task(h.id)
    assert record.status == TaskStatus.QUEUED
    assert (record.args, record.kwargs, record.attempts) == ([1, 2], {"z": 3}, 0)
    assert record.enqueued_at is not None and abs(record.enqueued_at - time.time()) < 5
    assert client.queue_depth("default").ready["medium"] == 1


def test_priorities_are_strict_and_fifo_within_a_level(client: Client) -> None:
    ids = {}
    for i in range(3):
        for p in ("low", "medium", "high"):
            ids[(p, i)] = client.enqueue("add", [i], priority=p).id
    order = [j.id for j in fetch(client, 9)]
    expected = [ids[(p, i)] for p in ("high", "medium", "low") for i in range(3)]
    assert order == expected


def test_fetch_leases_with_fencing_token_and_expiry(client: Client) -> None:
    h = client.enqueue("add", [1, 2])
    [job] = fetch(client)
    assert job.token == 1
    record = client.get_task(h.id)
    assert record.status == TaskStatus.RUNNING and record.worker == "w1"
    expiry = client.redis.zscore(client.queue_keys("default").leases, h.id)
    assert expiry is not None and 1000 < expiry - time.time() * 1000 <= 2100


def test_ack_with_stale_token_is_rejected(client: Client) -> None:
    h = client.enqueue("add", [1, 2])
    [job] = fetch(client)
    stale = Job(**{**job.to_json(), "token": job.token + 1})
    assert (
        complete(client, stale, Outcome(h.id, stale.token, OutcomeKind.SUCCESS, "3")) == CompletionCode.FENCED
    )
    assert client.get_task(h.id).status == TaskStatus.RUNNING
    assert (
        complete(client, job, Outcome(h.id, job.token, OutcomeKind.SUCCESS, "3")) == CompletionCode.SUCCEEDED
    )
    record = client.get_task(h.id)
    assert (record.status, record.result) == (TaskStatus.SUCCESS, 3)
    # A second ack of the same attempt changes nothing.
    assert (
        complete(client, job, Outcome(h.id, job.token, OutcomeKind.SUCCESS, "4")) == CompletionCode.LEASE_LOST
    )
    assert client.get_task(h.id).result == 3
    assert 0 < client.result_ttl(h.id) <= client.settings.result_ttl_seconds  # type: ignore[operator]


def test_fail_retries_with_backoff_then_dead_letters(client: Client) -> None:
    h = client.enqueue("x", max_retries=1)
    [job] = fetch(client)
    policy = RetryPolicy("constant", 0.2, jitter=False)
    err = Outcome(h.id, job.token, OutcomeKind.ERROR, error="OSError: boom", traceback="tb", retryable=True)
    assert complete(client, job, err, policy) == CompletionCode.RETRY_SCHEDULED
    record = client.get_task(h.id)
    assert record.status == TaskStatus.RETRYING and record.retries == 1
    assert record.retry_history[0]["backoff_seconds"] == pytest.approx(0.2)
    assert fetch(client) == []  # not due yet
    time.sleep(0.25)
    [job2] = fetch(client)
    assert job2.token == 2 and job2.retries == 1
    err2 = Outcome(h.id, job2.token, OutcomeKind.ERROR, error="OSError: again", retryable=True)
    assert complete(client, job2, err2, policy) == CompletionCode.FINISHED
    record = client.get_task(h.id)
    assert record.status == TaskStatus.FAILED
    assert record.dead_letter_reason == "max_retries_exceeded"
    assert [e["attempt"] for e in record.retry_history] == [1, 2]
    assert client.redis.ttl(client.queue_keys("default").task(h.id)) == -1  # dead letters are kept


def test_release_hands_task_back_to_the_front(client: Client) -> None:
    first = client.enqueue("a").id
    second = client.enqueue("b").id
    [job] = fetch(client, 1)
    assert job.id == first
    assert run_script(client.redis, build_release(client.settings, job, worker_id="w1")) == [
        CompletionCode.RELEASED
    ]
    assert [j.id for j in fetch(client, 2)] == [first, second]
    # The releasing worker's token is stale now: the task was leased again, with a newer token.
    assert complete(client, job, Outcome(first, job.token, OutcomeKind.SUCCESS)) == CompletionCode.FENCED


def test_heartbeat_renews_and_reports_lost_and_cancelled(client: Client) -> None:
    a = client.enqueue("a").id
    b = client.enqueue("b").id
    jobs = fetch(client, 2)
    leases = client.queue_keys("default").leases
    before = client.redis.zscore(leases, a)
    time.sleep(0.05)
    client.cancel(b, force=True)
    stale = [jobs[0], Job(**{**jobs[1].to_json(), "token": 99})]
    reply = run_script(client.redis, build_heartbeat(client.settings, "default", "w1", stale))
    lost, cancels = parse_heartbeat(reply)
    assert lost == [b] and cancels == {}
    assert client.redis.zscore(leases, a) > before  # type: ignore[operator]
    reply = run_script(client.redis, build_heartbeat(client.settings, "default", "w1", jobs))
    assert parse_heartbeat(reply) == ([], {b: "force"})


def test_expired_leases_are_recovered_idempotently_and_poison_dead_letters(settings: Settings) -> None:
    s = settings.model_copy(update={"lease_seconds": 0.3, "max_lost_leases": 1})
    client = Client(s)
    h = client.enqueue("a")
    fetch(client)
    assert client.recover_expired_leases(["default"]) == {"requeued": 0, "dead_lettered": 0}
    time.sleep(0.35)
    assert client.recover_expired_leases(["default"]) == {"requeued": 1, "dead_lettered": 0}
    assert client.recover_expired_leases(["default"]) == {"requeued": 0, "dead_lettered": 0}
    record = client.get_task(h.id)
    assert (record.status, record.lost_leases, record.worker) == (TaskStatus.QUEUED, 1, None)
    [job] = fetch(client)
    assert job.token == 2
    time.sleep(0.35)
    assert client.recover_expired_leases(["default"]) == {"requeued": 0, "dead_lettered": 1}
    record = client.get_task(h.id)
    assert (record.status, record.dead_letter_reason) == (TaskStatus.FAILED, "lease_lost_too_often")
    assert [d.id for d in client.list_dead_letters("default")] == [h.id]
    client.close()


def test_recover_all_leases_of_a_dead_worker_at_once(client: Client) -> None:
    client.enqueue("a")
    client.enqueue("b")
    fetch(client, 1, worker="dead-pod")
    fetch(client, 1, worker="alive-pod")
    assert client.recover_expired_leases(["default"], worker_id="dead-pod")["requeued"] == 1
    assert client.queue_depth("default").in_flight == 1


def test_cancel_waiting_tasks_removes_them_atomically(client: Client) -> None:
    queued = client.enqueue("a")
    delayed = client.enqueue("b", countdown=60)
    assert client.cancel(queued.id, reason="user_requested") == "cancelled"
    assert client.cancel(delayed.id, reason="other") == "cancelled"
    depth = client.queue_depth("default")
    assert depth.total_ready == 0 and depth.delayed == 0
    record = client.get_task(queued.id)
    assert (record.status, record.cancel_reason) == (TaskStatus.CANCELLED, "user_requested")
    assert client.cancel(queued.id) == "finished"
    assert fetch(client) == []


def test_cancel_running_task_sets_a_flag(client: Client) -> None:
    h = client.enqueue("a")
    [job] = fetch(client)
    assert client.cancel(h.id) == "requested"
    outcome = Outcome(h.id, job.token, OutcomeKind.CANCELLED, error="TaskCancelled")
    assert complete(client, job, outcome) == CompletionCode.FINISHED
    record = client.get_task(h.id)
    assert (record.status, record.cancel_reason) == (TaskStatus.CANCELLED, "user_requested")
    assert client.queue_depth("default").dead == 0


def test_delayed_task_becomes_ready_on_time(client: Client) -> None:
    h = client.enqueue("a", countdown=0.2)
    assert client.get_task(h.id).status == TaskStatus.DELAYED
    assert fetch(client) == []
    time.sleep(0.21)
    assert [j.id for j in fetch(client)] == [h.id]


def test_eta_in_the_past_is_ready_now(client: Client) -> None:
    h = client.enqueue("a", eta=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    assert client.get_task(h.id).status == TaskStatus.QUEUED


def test_replay_and_purge_dead_letters(client: Client) -> None:
    ids = []
    for i in range(3):
        h = client.enqueue("a", [i], priority=Priority.HIGH)
        [job] = fetch(client)
        complete(client, job, Outcome(h.id, job.token, OutcomeKind.ERROR, error="ValueError: x"), None)
        ids.append(h.id)
        # Dead letters are listed newest first by the millisecond they died in; within one millisecond
        # by id, whose random part is not in creation order. Three in one millisecond made this flaky.
        time.sleep(0.002)
    stats = client.dead_letter_stats("default")
    assert (stats.total, stats.by_task, stats.by_reason) == (3, {"a": 3}, {"not_retryable": 3})
    assert client.dead_letter_alert("default", threshold=3) is True
    assert [r.id for r in client.list_dead_letters("default", offset=0, limit=2)] == ids[::-1][:2]
    client.replay_dead_letter(ids[0], reset_retries=True)
    assert client.get_task(ids[0]).status == TaskStatus.QUEUED
    assert client.queue_depth("default").ready["high"] == 1
    assert client.purge_dead_letters("default") == 2
    assert client.queue_depth("default").dead == 0
    assert not client.result_exists(ids[1])


def test_batch_enqueue_is_one_round_trip_and_all_or_nothing_on_bad_input(client: Client) -> None:
    requests = [make_request("a", [i]) for i in range(100)]
    handles = client.enqueue_many(requests)
    assert len({h.id for h in handles}) == 100
    assert client.queue_depth("default").ready["medium"] == 100
    with pytest.raises(Exception, match="args"):
        client.enqueue_many([make_request("a", [1]), make_request("a", [object()])])
    assert client.queue_depth("default").ready["medium"] == 100


def test_enqueue_same_id_twice_is_idempotent(client: Client) -> None:
    request = make_request("a", [1])
    fixed = replace(request, task_id="default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f")
    client.enqueue_many([fixed])
    client.enqueue_many([fixed])
    assert client.queue_depth("default").ready["medium"] == 1


def test_watch_never_creates_a_task(client: Client) -> None:
    task_id = "default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f"
    assert watch(client.redis, client.settings, task_id) is None
    assert client.redis.exists(QueueKeys(client.settings.key_prefix, "default").task(task_id)) == 0


def test_watch_marks_a_task_awaited_and_returns_its_status(client: Client) -> None:
    """One wrapper for both clients: the sync call and the asyncio call run the same script."""
    handle = client.enqueue("a", [1])
    key = QueueKeys(client.settings.key_prefix, "default").task(handle.id)
    assert client.redis.hget(key, "watched") is None
    assert watch(client.redis, client.settings, handle.id) is TaskStatus.QUEUED
    assert client.redis.hget(key, "watched") == "1"

    async def watch_from_asyncio() -> TaskStatus | None:
        async_client = AsyncClient(client.settings)
        try:
            return await watch_async(async_client.redis, client.settings, handle.id)
        finally:
            await async_client.close()

    assert asyncio.run(watch_from_asyncio()) is TaskStatus.QUEUED


def test_many_acks_in_one_round_trip(client: Client) -> None:
    for i in range(20):
        client.enqueue("a", [i])
    jobs = fetch(client, 20)
    calls = [
        build_completion(
            client.settings, j, Outcome(j.id, j.token, OutcomeKind.SUCCESS, "1"), None, worker_id="w1"
        )
        for j in jobs
    ]
    assert run_scripts(client.redis, calls) == [[1]] * 20
    assert client.queue_depth("default").in_flight == 0


def _event_of(client: Client, task_id: str, event: str) -> dict[str, str]:
    keys = QueueKeys(client.settings.key_prefix, task_id.rpartition(".")[0])
    entries = client.redis.xrange(keys.events)
    return next(f for _, f in entries if f["id"] == task_id and f["event"] == event)


def test_enqueue_many_writes_what_enqueue_writes(client: Client) -> None:
    """The batch script and the single one leave the same task hash and the same 'enqueued' event."""
    options = {"priority": "high", "max_retries": 3, "timeout": 5.0, "result_ttl": 60}
    plain = client.enqueue_many([make_request("a", [1, "x"], {"k": [2]}, **options)])[0]  # type: ignore[arg-type]
    fixed = replace(
        make_request("a", [1, "x"], {"k": [2]}, **options),  # type: ignore[arg-type]
        task_id="default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f",
    )
    single = client.enqueue_many([fixed])[0]  # a caller-chosen id goes through enqueue.lua
    keys = QueueKeys(client.settings.key_prefix, "default")
    drop = {"enqueued_at"}
    batch_hash = {k: v for k, v in client.redis.hgetall(keys.task(plain.id)).items() if k not in drop}
    single_hash = {k: v for k, v in client.redis.hgetall(keys.task(single.id)).items() if k not in drop}
    assert batch_hash == single_hash
    drop_event = {"id", "ts"}
    batch_event = {k: v for k, v in _event_of(client, plain.id, "enqueued").items() if k not in drop_event}
    single_event = {k: v for k, v in _event_of(client, single.id, "enqueued").items() if k not in drop_event}
    assert batch_event == single_event
    assert client.redis.hget(keys.stats, "enqueued") == "2"


def test_enqueue_many_keeps_request_order_across_mixed_requests(client: Client) -> None:
    """Plain requests are grouped into one call only while consecutive: FIFO holds in a mixed batch."""
    requests = [
        make_request("a", [0]),
        make_request("a", [1]),
        make_request("a", [2], unique=True),
        make_request("a", [3]),
        make_request("b", [4]),
        make_request("a", [5], countdown=0.2),
        make_request("a", [6]),
    ]
    handles = client.enqueue_many(requests)
    statuses = [client.get_task(h.id).status for h in handles]
    assert statuses == [TaskStatus.QUEUED] * 5 + [TaskStatus.DELAYED, TaskStatus.QUEUED]
    assert [j.id for j in fetch(client, 10)] == [h.id for i, h in enumerate(handles) if i != 5]
    time.sleep(0.25)
    assert [j.id for j in fetch(client, 10)] == [handles[5].id]


def test_enqueue_many_resent_does_not_queue_a_task_twice(client: Client) -> None:
    """A pipeline re-sent after a lost reply runs the same call again: nothing is created twice."""
    plan = plan_enqueue(client.settings, [make_request("a", [i]) for i in range(5)])
    first = run_scripts(client.redis, plan.calls)
    fetch(client, 2)
    again = run_scripts(client.redis, plan.calls)
    assert first == [["QUEUED"] * 5]
    assert again == [["RUNNING"] * 2 + ["QUEUED"] * 3]
    assert client.queue_depth("default").ready["medium"] == 3
    assert client.redis.hget(QueueKeys(client.settings.key_prefix, "default").stats, "enqueued") == "5"


def test_enqueue_many_resent_after_its_first_task_was_deleted_creates_only_that_one(client: Client) -> None:
    """A call looks tasks up one by one only when its first or last task exists (the ids are fresh, the
    call atomic); with the first one gone since, the last still marks the call as already run."""
    plan = plan_enqueue(client.settings, [make_request("a", [i]) for i in range(4)])
    run_scripts(client.redis, plan.calls)
    first_id = plan.slots[0][2]
    client.redis.delete(QueueKeys(client.settings.key_prefix, "default").task(first_id))
    again = run_scripts(client.redis, plan.calls)
    assert again == [["QUEUED"] * 4]
    assert client.queue_depth("default").ready["medium"] == 5  # the first id was queued again, no other
    assert client.redis.hget(QueueKeys(client.settings.key_prefix, "default").stats, "enqueued") == "5"


def test_one_ack_call_for_many_tasks_is_fenced_per_task(client: Client) -> None:
    for i in range(20):
        client.enqueue("a", [i])
    jobs = fetch(client, 20)
    done = [(j, Outcome(j.id, j.token, OutcomeKind.SUCCESS, str(i))) for i, j in enumerate(jobs)]
    stale = replace(jobs[3], token=jobs[3].token + 1)
    done[3] = (stale, Outcome(stale.id, stale.token, OutcomeKind.SUCCESS, "99"))
    assert (
        run_script(client.redis, build_ack(client.settings, done, worker_id="w1"))
        == [1] * 3 + [-2] + [1] * 16
    )
    assert client.queue_depth("default").in_flight == 1  # the stale one is still leased
    assert client.get_task(jobs[5].id).result == 5
    assert client.get_task(jobs[3].id).status == TaskStatus.RUNNING
    keys = QueueKeys(client.settings.key_prefix, "default")
    assert client.redis.hget(keys.stats, "succeeded") == "19"
    assert _event_of(client, jobs[5].id, "succeeded")["result"] == "5"


def test_enqueue_writes_no_field_whose_value_is_its_default(client: Client) -> None:
    """Lean task hash: counters start absent (= 0), eta only for a task due later, max_retries only when
    set, no queue (the id's prefix); the record reads the same as with the defaults written out."""
    keys = QueueKeys(client.settings.key_prefix, "default")
    fixed = replace(make_request("a", [1]), task_id="default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f")
    for handle in (client.enqueue("a", [1]), client.enqueue_many([fixed])[0]):
        fields = client.redis.hgetall(keys.task(handle.id))
        assert not {"attempts", "retries", "lost_leases", "eta", "max_retries", "queue"} & set(fields)
        record = client.get_task(handle.id)
        assert record.queue == "default"
        assert (record.attempts, record.retries, record.lost_leases) == (0, 0, 0)
        assert (record.eta, record.max_retries) == (None, None)
        assert not {"eta", "queue", "max_retries"} & set(_event_of(client, handle.id, "enqueued"))
    delayed = client.enqueue("a", countdown=60, max_retries=2)
    fields = client.redis.hgetall(keys.task(delayed.id))
    assert (fields["status"], fields["max_retries"]) == ("DELAYED", "2")
    assert int(fields["eta"]) == int(_event_of(client, delayed.id, "enqueued")["eta"])
    assert client.get_task(delayed.id).eta == pytest.approx(time.time() + 60, abs=5)


def test_a_task_written_in_the_earlier_layout_runs_as_before(client: Client) -> None:
    """Tasks enqueued before the lean layout (every default written out) need no migration: fetch,
    fail, retry, lease recovery and ack read them as before."""
    keys = QueueKeys(client.settings.key_prefix, "default")
    task_id = "default.0192f0c2a1b27c3d8e9f0a1b2c3d4e60"
    now_ms = int(time.time() * 1000)
    client.redis.hset(
        keys.task(task_id),
        mapping={
            "status": "QUEUED", "enqueued_at": now_ms, "eta": 0, "attempts": 0, "retries": 0,
            "lost_leases": 0, "args": "[1]", "kwargs": "{}", "name": "a", "queue": "default",
            "priority": "medium", "max_retries": "", "result_ttl": 60,
        },
    )  # fmt: skip
    client.redis.rpush(keys.ready("medium"), task_id)
    record = client.get_task(task_id)
    assert (record.attempts, record.retries, record.eta, record.max_retries) == (0, 0, None, None)
    [job] = fetch(client)
    assert (job.token, job.retries, job.max_retries) == (1, 0, 0)
    policy = RetryPolicy("constant", 0.01, jitter=False)
    err = Outcome(task_id, job.token, OutcomeKind.ERROR, error="OSError: boom", retryable=True)
    client.redis.hset(keys.task(task_id), "max_retries", 1)
    assert complete(client, job, err, policy) == CompletionCode.RETRY_SCHEDULED
    time.sleep(0.02)
    [job2] = fetch(client)
    assert (job2.token, job2.retries) == (2, 1)
    assert (
        complete(client, job2, Outcome(task_id, job2.token, OutcomeKind.SUCCESS, result_json="3"))
        == CompletionCode.SUCCEEDED
    )
    assert client.get_task(task_id).status == TaskStatus.SUCCESS


def test_a_lean_task_counts_retries_and_lost_leases_from_zero(settings: Settings) -> None:
    s = settings.model_copy(update={"lease_seconds": 0.2, "max_lost_leases": 5})
    client = Client(s)
    try:
        h = client.enqueue("a", max_retries=1)
        fetch(client)
        time.sleep(0.25)
        assert client.recover_expired_leases(["default"]) == {"requeued": 1, "dead_lettered": 0}
        [job] = fetch(client)
        assert (job.token, job.retries) == (2, 0)
        err = Outcome(h.id, job.token, OutcomeKind.ERROR, error="OSError: boom", retryable=True)
        assert (
            complete(client, job, err, RetryPolicy("constant", 0.01, jitter=False))
            == CompletionCode.RETRY_SCHEDULED
        )
        record = client.get_task(h.id)
        assert (record.attempts, record.retries, record.lost_leases) == (2, 1, 1)
    finally:
        client.close()


def test_a_batch_splits_calls_by_queue_even_when_the_specs_are_equal(client: Client) -> None:
    """The shared spec no longer names the queue: requests of two queues never share a call."""
    requests = [make_request("a", [i], queue="default" if i < 2 or i == 4 else "other") for i in range(6)]
    handles = client.enqueue_many(requests)
    for queue, expected in (("default", [0, 1, 4]), ("other", [2, 3, 5])):
        ready = client.redis.lrange(QueueKeys(client.settings.key_prefix, queue).ready("medium"), 0, -1)
        assert ready == [handles[i].id for i in expected]
        assert {client.get_task(i).queue for i in ready} == {queue}


def test_a_batch_fanned_out_over_queues_shares_calls_and_keeps_each_lists_order(client: Client) -> None:
    """Interleaved queues share one call per queue and spec (it was one call per task); a list fed two
    specs in turn (a, b, a, b on one queue and priority) still receives them in request order, and
    a request that is not plain (a dedup key) keeps its place between the plain ones."""
    fanned = [make_request("a", [i], queue=f"fan{i % 3}") for i in range(30)]
    plan = plan_enqueue(client.settings, fanned)
    assert len(plan.calls) == 3
    mixed = [make_request("a" if i % 2 else "b", [i], queue="mix") for i in range(6)]
    mixed.insert(3, make_request("a", [99], queue="mix", unique_key="only-once"))
    mixed_plan = plan_enqueue(client.settings, mixed)
    ids = [task_id for _, _, task_id in mixed_plan.slots]
    # Both scripts loaded first: a call that meets NOSCRIPT is re-run after the rest of its exchange.
    client.enqueue_many([make_request("a", [0], queue="warm", unique_key="warm"), make_request("a", [0])])
    handles = client.enqueue_many(fanned) + client.enqueue_many(mixed)
    assert [h.id.split(".")[0] for h in handles[:30]] == [f"fan{i % 3}" for i in range(30)]
    for n in range(3):
        listed = client.redis.lrange(QueueKeys(client.settings.key_prefix, f"fan{n}").ready("medium"), 0, -1)
        assert [client.get_task(i).args for i in listed] == [[i] for i in range(n, 30, 3)]
    listed = client.redis.lrange(QueueKeys(client.settings.key_prefix, "mix").ready("medium"), 0, -1)
    got = [client.get_task(i).args for i in listed]
    assert got == [[0], [1], [2], [99], [3], [4], [5]], got
    assert len(ids) == 7 and len(set(ids)) == 7
