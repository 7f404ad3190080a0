"""Hand-off: enqueue leases a task that is ready now straight to a parked worker (lua/_handoff.lua).

Script-level tests drive fetch.lua's parking by hand (a "worker" here is just an id); the worker tests use
real ``jobqueue worker`` processes: a dead parked worker's task is recovered, a drained worker leaves the
parked hash, a handed-off task can be cancelled.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import runs, wait_until

from jobqueue import Client, TaskStatus
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.lease_recovery import build_recover
from jobqueue.broker.leases import FetchReply, build_fetch, parse_fetch, parse_handoff
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.redis_io import run_script

pytestmark = pytest.mark.timeout(60)
QUEUE = "default"
PARK_MS = 3000
StartWorker = Callable[..., Any]


def fetch(client: Client, worker: str, n: int = 4, park_ms: int | None = PARK_MS) -> FetchReply:
    call = build_fetch(client.settings, QUEUE, n, worker, park_ms)
    return parse_fetch(QUEUE, run_script(client.redis, call))


def parked(client: Client) -> dict[str, str]:
    return client.redis.hgetall(client.queue_keys(QUEUE).parked)  # type: ignore[no-any-return]


def inbox(client: Client, worker: str) -> list[str]:
    return client.redis.lrange(client.queue_keys(QUEUE).inbox(worker), 0, -1)  # type: ignore[no-any-return]


def ready(client: Client) -> list[str]:
    return [i for key in client.queue_keys(QUEUE).ready_all for i in client.redis.lrange(key, 0, -1)]


def stats(client: Client) -> dict[str, str]:
    return client.redis.hgetall(client.queue_keys(QUEUE).stats)  # type: ignore[no-any-return]


def events(client: Client, task_id: str) -> list[dict[str, str]]:
    entries = client.redis.xrange(client.queue_keys(QUEUE).events)
    return [fields for _, fields in entries if fields["id"] == task_id]


def lease_fields(client: Client, task_id: str) -> dict[str, str]:
    """What a lease writes on the task hash, plus its lease expiry relative to started_at."""
    keys = client.queue_keys(QUEUE)
    status, attempts, worker, started_at = client.redis.hmget(
        keys.task(task_id), ["status", "attempts", "worker", "started_at"]
    )
    expiry = client.redis.zscore(keys.leases, task_id)
    assert expiry is not None
    return {
        "status": status,
        "attempts": attempts,
        "worker": worker,
        "lease_ms": str(int(expiry) - int(started_at)),
    }


def test_an_idle_worker_parks_and_an_enqueue_is_leased_into_its_inbox_as_a_fetch_would(
    client: Client,
) -> None:
    assert fetch(client, "w1").jobs == []
    expires, lease_ms, capacity = parked(client)["w1"].split()[:3]
    assert int(expires) > time.time() * 1000
    assert lease_ms == str(int(client.settings.lease_seconds * 1000)) and capacity == "4"

    handed = client.enqueue("add", [1, 2])
    (record,) = inbox(client, "w1")
    reply, capacity_left = parse_handoff(QUEUE, record)
    assert capacity_left == 3 and parked(client)["w1"].split()[2] == "3"
    assert ready(client) == []  # not queued and nobody woken: it is already this worker's
    assert client.redis.llen(client.queue_keys(QUEUE).wake) == 0

    # The same task shape through a fetch, for comparison: a second worker takes it from the queue.
    client.redis.hdel(client.queue_keys(QUEUE).parked, "w1")
    fetched_handle = client.enqueue("add", [1, 2])
    fetched = fetch(client, "w2", park_ms=None)
    (handed_job,), (fetched_job,) = reply.jobs, fetched.jobs
    assert handed_job.id == handed.id and fetched_job.id == fetched_handle.id
    same = ("token", "name", "args_json", "kwargs_json", "queue", "priority", "timeout", "max_retries")
    assert {f: getattr(handed_job, f) for f in same} == {f: getattr(fetched_job, f) for f in same}
    handed_lease, fetched_lease = lease_fields(client, handed.id), lease_fields(client, fetched_handle.id)
    assert handed_lease == {**fetched_lease, "worker": "w1"}
    assert reply.queue_wait_ms == [0]
    # The event stream tells the same story: enqueued, then started by w1 with the fencing token.
    assert [e["event"] for e in events(client, handed.id)] == ["enqueued", "started"]
    started = events(client, handed.id)[1]
    assert started["token"] == "1" and started["worker"] == "w1"
    counters = stats(client)
    assert counters["handed_off"] == "1" and counters["started"] == "2"


def test_capacity_runs_out_and_the_rest_queues(client: Client) -> None:
    fetch(client, "w1", n=2)
    ids = [client.enqueue("add", [i, i]).id for i in range(3)]
    assert [parse_handoff(QUEUE, r)[0].jobs[0].id for r in inbox(client, "w1")] == ids[:2]
    assert "w1" not in parked(client)
    assert ready(client) == ids[2:]
    assert client.redis.llen(client.queue_keys(QUEUE).wake) == 1


def test_enqueue_many_hands_off_the_first_tasks_and_queues_the_rest(client: Client) -> None:
    fetch(client, "w1", n=2)
    handles = client.enqueue_many([make_request("add", [i, i]) for i in range(5)])
    ids = [h.id for h in handles]
    assert [parse_handoff(QUEUE, r)[0].jobs[0].id for r in inbox(client, "w1")] == ids[:2]
    assert ready(client) == ids[2:]
    for task_id in ids[:2]:
        assert client.get_task(task_id).status == TaskStatus.RUNNING
        assert [e["event"] for e in events(client, task_id)] == ["enqueued", "started"]


def test_no_hand_off_past_waiting_work_or_flow_control(client: Client) -> None:
    admin = QueueAdmin(client)
    # Work already waiting (here: high priority) goes first; the new task queues behind it.
    fetch(client, "w1")
    client.redis.rpush(client.queue_keys(QUEUE).ready("high"), "outside-entry")
    queued = client.enqueue("add", [1, 1])
    assert inbox(client, "w1") == [] and client.get_task(queued.id).status == TaskStatus.QUEUED
    client.redis.delete(*client.queue_keys(QUEUE).ready_all)

    admin.pause(QUEUE)
    paused = client.enqueue("add", [1, 1])
    assert inbox(client, "w1") == [] and ready(client) == [paused.id]
    admin.resume(QUEUE)
    client.redis.delete(*client.queue_keys(QUEUE).ready_all)

    # Max in-flight 1 with one lease held elsewhere: no room.
    admin.set_max_in_flight(QUEUE, 1)
    client.redis.zadd(client.queue_keys(QUEUE).leases, {"someone-else": 9e12})
    full = client.enqueue("add", [1, 1])
    assert inbox(client, "w1") == [] and ready(client) == [full.id]
    client.redis.zrem(client.queue_keys(QUEUE).leases, "someone-else")
    admin.set_max_in_flight(QUEUE, None)
    client.redis.delete(*client.queue_keys(QUEUE).ready_all)

    # Rate limit of 1 per minute: the first start spends it, the second waits in the queue.
    admin.set_rate_limit(QUEUE, max_tasks_per_minute=1)
    first, second = client.enqueue("add", [1, 1]), client.enqueue("add", [2, 2])
    assert [parse_handoff(QUEUE, r)[0].jobs[0].id for r in inbox(client, "w1")] == [first.id]
    assert ready(client) == [second.id]
    # The hand-off spent the token: a fetch is now told to wait, as after a fetched start.
    assert fetch(client, "w2", park_ms=None).wait_ms > 1000


def test_an_expired_parking_is_dropped(client: Client) -> None:
    fetch(client, "w1", park_ms=1)
    time.sleep(0.05)
    queued = client.enqueue("add", [1, 1])
    assert inbox(client, "w1") == [] and parked(client) == {} and ready(client) == [queued.id]


def test_a_dead_parking_is_dropped_and_a_live_one_gets_the_task(client: Client) -> None:
    # Whichever HRANDFIELD picks first, the expired and the malformed entries are dropped on the way and
    # the live worker gets the task (its entry read in the same reply as its id).
    fetch(client, "dead", park_ms=1)
    client.redis.hset(client.queue_keys(QUEUE).parked, "garbled", "not an entry \x00")
    time.sleep(0.05)
    fetch(client, "live")
    handed = client.enqueue("add", [1, 1])
    assert [parse_handoff(QUEUE, r)[0].jobs[0].id for r in inbox(client, "live")] == [handed.id]
    assert inbox(client, "dead") == [] and ready(client) == []
    assert set(parked(client)) <= {"live", "dead", "garbled"} and "live" in parked(client)


def test_a_fetch_unparks_and_returns_what_was_handed_off_first(client: Client) -> None:
    fetch(client, "w1")
    handed = client.enqueue("add", [1, 1])
    queued = client.enqueue("add", [2, 2])  # w1 still parked, but work is waiting now: queued
    reply = fetch(client, "w1", n=4)
    assert [j.id for j in reply.jobs] == [handed.id, queued.id]
    assert [j.token for j in reply.jobs] == [1, 1]
    assert inbox(client, "w1") == [] and "w1" not in parked(client)  # found work: not parked again
    assert stats(client)["started"] == "2"
    # Unparking alone (capacity 0) takes the inbox and does not park.
    fetch(client, "w1")
    assert "w1" in parked(client)
    assert fetch(client, "w1", n=0, park_ms=0).jobs == [] and parked(client) == {}


# -- real workers -------------------------------------------------------------------------------------


def wait_parked(client: Client, worker_id: str) -> None:
    wait_until(lambda: worker_id in parked(client), timeout=20)


@pytest.mark.parametrize("pool", ["thread", "process", "async"])
def test_a_worker_runs_handed_off_tasks(client: Client, start_worker: StartWorker, pool: str) -> None:
    """The thread pool waits in a free slot and runs the task there; the others wait in the fetch loop."""
    start_worker("--worker-id", "pod-h", "--pool", pool, "--concurrency", "2")
    wait_parked(client, "pod-h")
    for i in range(5):
        assert client.enqueue("add", [i, 1]).result(timeout=20) == i + 1
    assert int(stats(client).get("handed_off", 0)) >= 1


def test_a_parked_worker_killed_has_its_handed_off_task_recovered(
    client: Client, start_worker: StartWorker
) -> None:
    dead = start_worker("--worker-id", "pod-dead", "--pool", "thread")
    wait_parked(client, "pod-dead")
    os.killpg(dead.pid, signal.SIGKILL)
    dead.process.wait(10)
    h = client.enqueue("record", [], {"sleep": 0.0})
    # Its entry was still fresh: the task was leased to the dead worker, and sits in its inbox.
    assert client.get_task(h.id).worker == "pod-dead" and stats(client)["handed_off"] == "1"
    start_worker("--worker-id", "pod-alive", "--pool", "thread")
    # The lease (2 s in tests) expires and recovery gives the task back; the live worker runs it once.
    assert h.result(timeout=30) == h.id
    record = client.get_task(h.id)
    assert record.worker == "pod-alive" and record.lost_leases == 1 and record.attempts == 2
    assert [r[1] for r in runs(client) if r[0] == h.id] == ["start", "done"]


def test_a_drained_worker_leaves_the_parked_hash(client: Client, start_worker: StartWorker) -> None:
    w = start_worker("--worker-id", "pod-drain", "--pool", "thread")
    wait_parked(client, "pod-drain")
    assert w.terminate() == 0
    assert "pod-drain" not in parked(client)
    h = client.enqueue("add", [1, 1])
    assert client.get_task(h.id).status == TaskStatus.QUEUED and ready(client) == [h.id]


def test_a_held_worker_leaves_the_parked_hash(client: Client, start_worker: StartWorker) -> None:
    w = start_worker("--worker-id", "pod-hold", "--pool", "thread")
    wait_parked(client, "pod-hold")
    client.request_drain("pod-hold", exit=False)
    wait_until(lambda: "pod-hold" not in parked(client), timeout=20)
    h = client.enqueue("add", [1, 1])
    time.sleep(1.5)
    assert client.get_task(h.id).status == TaskStatus.QUEUED
    client.cancel_drain("pod-hold")
    assert h.result(timeout=20) == 2
    assert w.terminate() == 0


def test_a_handed_off_task_can_be_cancelled(client: Client, start_worker: StartWorker) -> None:
    start_worker("--worker-id", "pod-c", "--pool", "thread")
    wait_parked(client, "pod-c")
    h = client.enqueue("cancellable", [20])
    assert stats(client)["handed_off"] == "1"
    wait_until(lambda: client.get_task(h.id).status == TaskStatus.RUNNING, timeout=20)
    assert client.cancel(h.id) == "requested"
    assert h.result(timeout=10) == "saw cancel"


def test_inbox_record_is_json_of_the_fetch_fields(client: Client) -> None:
    fetch(client, "w1")
    client.enqueue("add", [1, 2], timeout=5, headers={"x-request-id": "r-1"})
    (raw,) = inbox(client, "w1")
    record = json.loads(raw)
    # The 15 fetch reply values, as fetch.lua returns them (the headers last), then the capacity left.
    assert len(record) == 16 and record[2] == "add" and json.loads(record[3]) == [1, 2] and record[-1] == 3
    assert json.loads(record[14]) == {"x-request-id": "r-1"}


def test_a_stale_inbox_record_whose_lease_was_recovered_is_dropped(client: Client) -> None:
    """A restarted process with the same worker id (a pod's container restart) must not run a task whose
    lease was recovered while the record sat in the inbox."""
    fetch(client, "w1")
    h = client.enqueue("add", [1, 1])
    keys = client.queue_keys(QUEUE)
    client.redis.zadd(keys.leases, {h.id: 1})  # the lease expired ...
    recover = build_recover(client.settings, QUEUE)
    assert run_script(client.redis, recover)[0] == 1  # ... and was recovered: QUEUED again
    reply = fetch(client, "w1")
    # The stale record is dropped; the task is leased afresh from the queue, with the next token.
    assert [(j.id, j.token) for j in reply.jobs] == [(h.id, 2)]


# -- the thread pool's idle wait in a free slot (runtime.Worker._wait_in_slot) ------------------------------


def starts(client: Client) -> dict[str, int]:
    """How many times each task started (jq_test_app's ``record``)."""
    out: dict[str, int] = {}
    for task_id, what, _ in runs(client):
        if what == "start":
            out[task_id] = out.get(task_id, 0) + 1
    return out


def test_a_second_hand_off_starts_in_another_slot_while_the_first_runs(
    client: Client, start_worker: StartWorker
) -> None:
    """The slot that popped the first task runs it; the wait moves on to the next free slot at once, so a
    long task never holds up a second one the worker still has room for."""
    start_worker("--worker-id", "pod-2", "--pool", "thread", "--concurrency", "2")
    wait_parked(client, "pod-2")
    long = client.enqueue("record", [], {"sleep": 3.0})
    wait_until(lambda: long.id in starts(client), timeout=20)
    short = client.enqueue("record", [], {"sleep": 0.0})
    assert short.result(timeout=20) == short.id
    assert client.get_task(long.id).status == TaskStatus.RUNNING  # the short one did not wait for it
    assert long.result(timeout=20) == long.id
    assert stats(client)["handed_off"] == "2"
    assert starts(client) == {long.id: 1, short.id: 1}


def test_a_one_slot_worker_takes_a_hand_off_then_fetches_what_queued_meanwhile(
    client: Client, start_worker: StartWorker
) -> None:
    start_worker("--worker-id", "pod-1", "--pool", "thread", "--concurrency", "1")
    wait_parked(client, "pod-1")
    first = client.enqueue("record", [], {"sleep": 1.0})
    wait_until(lambda: first.id in starts(client), timeout=20)
    second = client.enqueue("record", [], {"sleep": 0.0})  # no free slot: queued, not handed off
    assert stats(client)["handed_off"] == "1"
    assert second.result(timeout=20) == second.id and first.result(timeout=20) == first.id
    wait_parked(client, "pod-1")  # idle again: parked for the next one
    third = client.enqueue("record", [], {"sleep": 0.0})
    assert third.result(timeout=20) == third.id and stats(client)["handed_off"] == "2"


@pytest.mark.parametrize("after_start", [False, True])
def test_a_worker_killed_just_after_the_pop_has_the_task_recovered_and_run_once_more(
    client: Client, start_worker: StartWorker, after_start: bool
) -> None:
    """SIGKILL while the slot that popped the task is booking or running it: the lease (granted by enqueue)
    expires and recovery gives the task to another worker; it finishes exactly once."""
    dead = start_worker("--worker-id", "pod-k", "--pool", "thread")
    wait_parked(client, "pod-k")
    h = client.enqueue("record", [], {"sleep": 2.0})
    if after_start:
        wait_until(lambda: h.id in starts(client), timeout=20)
    dead.signal_group(signal.SIGKILL)
    dead.process.wait(10)
    assert client.get_task(h.id).worker == "pod-k" and stats(client)["handed_off"] == "1"
    start_worker("--worker-id", "pod-r", "--pool", "thread")
    assert h.result(timeout=30) == h.id
    record = client.get_task(h.id)
    assert record.worker == "pod-r" and record.lost_leases == 1 and record.attempts == 2
    done = [r for r in runs(client) if r[0] == h.id and r[1] == "done"]
    assert len(done) == 1
