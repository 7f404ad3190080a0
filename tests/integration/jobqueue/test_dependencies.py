"""Dependencies inside the transition scripts (enqueue, ack, fail, cancel, recover), against real Redis."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from jobqueue import AsyncClient, Client, Settings, Signature, TaskStatus, ValidationError, chain
from jobqueue.broker.completion import CompletionCode, parse_completion
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import Job, Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.redis_io import run_script

pytestmark = pytest.mark.timeout(30)


def fetch(client: Client, n: int = 10, queue: str = "default") -> list[Job]:
    return parse_fetch(queue, run_script(client.redis, build_fetch(client.settings, queue, n, "w1"))).jobs


def finish(
    client: Client, job: Job, kind: OutcomeKind = OutcomeKind.SUCCESS, result: str = "null"
) -> CompletionCode:
    outcome = Outcome(job.id, job.token, kind, result, error="ValueError: no")
    call = build_completion(client.settings, job, outcome, None, worker_id="w1")
    return parse_completion(run_script(client.redis, call))[0]


def status(client: Client, task_id: str) -> TaskStatus:
    return client.get_task(task_id).status


def test_child_waits_pending_until_every_parent_succeeded(client: Client) -> None:
    a = client.enqueue("a").id
    b = client.enqueue("b").id
    child = client.enqueue("child", depends_on=[a, b]).id
    record = client.get_task(child)
    assert (record.status, record.parents, record.pending_parents) == (TaskStatus.PENDING, [a, b], 2)
    assert client.get_task(a).children == [child]
    jobs = {j.id: j for j in fetch(client)}
    assert set(jobs) == {a, b}  # the child is in no ready list
    finish(client, jobs[a])
    assert client.get_task(child).pending_parents == 1
    assert fetch(client) == []
    finish(client, jobs[b])
    assert status(client, child) == TaskStatus.QUEUED
    assert [j.id for j in fetch(client)] == [child]


def test_parent_that_already_succeeded_does_not_hold_the_child(client: Client) -> None:
    a = client.enqueue("a").id
    finish(client, fetch(client)[0], result="5")
    child = client.enqueue("child", depends_on=[a])
    assert child.status() == TaskStatus.QUEUED


def test_unknown_parent_is_rejected_and_nothing_is_written(client: Client) -> None:
    ghost = "default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f"
    with pytest.raises(ValidationError, match="unknown parent") as info:
        client.enqueue("child", depends_on=[ghost])
    assert info.value.field == "depends_on"
    assert client.queue_depth("default").total_ready == 0
    assert client.redis.hget(client.queue_keys("default").stats, "enqueued") is None


def test_final_failure_cancels_every_descendant_once(client: Client) -> None:
    a = client.enqueue("a").id
    b = client.enqueue("b", depends_on=[a]).id
    c = client.enqueue("c", depends_on=[a]).id
    d = client.enqueue("d", depends_on=[b, c]).id
    [job] = fetch(client)
    assert finish(client, job, OutcomeKind.ERROR) == CompletionCode.FINISHED
    assert status(client, a) == TaskStatus.FAILED
    for task_id in (b, c, d):
        record = client.get_task(task_id)
        assert (record.status, record.cancel_reason) == (TaskStatus.CANCELLED, "dependency_failed")
    assert client.redis.hget(client.queue_keys("default").stats, "cancelled") == "3"
    late = client.enqueue("late", depends_on=[a])  # born cancelled: its parent can never succeed
    assert (late.get().status, late.get().cancel_reason) == (TaskStatus.CANCELLED, "dependency_failed")


def test_cancelling_a_waiting_parent_cancels_its_descendants(client: Client) -> None:
    a = client.enqueue("a", countdown=60).id
    b = client.enqueue("b", depends_on=[a]).id
    c = client.enqueue("c", depends_on=[b]).id
    assert client.cancel(a) == "cancelled"
    assert [client.get_task(t).cancel_reason for t in (a, b, c)] == [
        "user_requested",
        "dependency_failed",
        "dependency_failed",
    ]


def test_poison_parent_dead_lettered_by_recovery_cancels_children(settings: Settings) -> None:
    client = Client(settings.model_copy(update={"lease_seconds": 0.3, "max_lost_leases": 0}))
    try:
        a = client.enqueue("a").id
        b = client.enqueue("b", depends_on=[a]).id
        fetch(client)
        time.sleep(0.35)
        assert client.recover_expired_leases(["default"]) == {"requeued": 0, "dead_lettered": 1}
        assert client.get_task(b).cancel_reason == "dependency_failed"
    finally:
        client.close()


def test_cross_queue_child_is_released_into_its_own_queue(client: Client) -> None:
    a = client.enqueue("a", queue="cpu").id
    child = client.enqueue("child", queue="gpu", depends_on=[a]).id
    finish(client, fetch(client, queue="cpu")[0])
    assert [j.id for j in fetch(client, queue="gpu")] == [child]


def test_parent_results_are_spliced_into_args_without_reencoding(client: Client) -> None:
    a = client.enqueue("a").id
    b = client.enqueue("b").id
    request = replace(make_request("total", [1, {}], depends_on=[a, b]), pass_result="list")
    [child] = client.enqueue_many([request])
    jobs = {j.id: j for j in fetch(client)}
    finish(client, jobs[b], result='{"n":[]}')
    finish(client, jobs[a], result="12345678901234567890")
    [job] = fetch(client)
    assert job.id == child.id
    assert job.args_json == '[[12345678901234567890,{"n":[]}],1,{}]'


def test_async_client_enqueues_dependents_and_submits_workflows(settings: Settings, client: Client) -> None:
    async def scenario() -> tuple[str, str, list[str]]:
        aclient = AsyncClient(settings)
        try:
            parent = await aclient.enqueue("a", unique=True)
            again = await aclient.enqueue("a", unique=True)
            child = await aclient.enqueue("b", depends_on=[parent.id])
            assert again.id == parent.id and again.deduplicated
            flow = await aclient.submit_workflow(chain(Signature("x"), Signature("y")))
            return parent.id, child.id, flow.ids
        finally:
            await aclient.close()

    parent, child, (x, y) = asyncio.run(scenario())
    assert client.get_task(parent).children == [child]
    assert client.get_task(child).status == TaskStatus.PENDING
    assert (client.get_task(x).status, client.get_task(y).status) == (TaskStatus.QUEUED, TaskStatus.PENDING)


def test_parent_already_succeeded_still_passes_its_result(client: Client) -> None:
    a = client.enqueue("a").id
    finish(client, fetch(client)[0], result='{"rows":3}')
    [child] = client.enqueue_many([replace(make_request("b", [1], depends_on=[a]), pass_result="first")])
    [job] = fetch(client)
    assert (job.id, job.args_json) == (child.id, '[{"rows":3},1]')


def test_released_child_with_a_future_eta_waits_in_the_delayed_set(client: Client) -> None:
    a = client.enqueue("a").id
    child = client.enqueue("b", depends_on=[a], countdown=60).id
    assert status(client, child) == TaskStatus.PENDING
    finish(client, fetch(client)[0])
    assert status(client, child) == TaskStatus.DELAYED
    assert client.queue_depth("default").delayed == 1 and fetch(client) == []
