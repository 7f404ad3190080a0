"""A parent's children live in a list of their own (keys.QueueKeys.children), one RPUSH per child, instead
of a JSON field of the parent rewritten per child (issue 14). Real Redis, the real scripts."""

from __future__ import annotations

import json

import pytest

from jobqueue import Client, TaskStatus
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.leases import Job, Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.redis_io import run_script
from jobqueue.keys import QueueKeys

pytestmark = pytest.mark.timeout(30)


def fetch_one(client: Client) -> Job:
    [job] = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
    ).jobs
    return job


def finish(client: Client, job: Job, kind: OutcomeKind = OutcomeKind.SUCCESS) -> None:
    outcome = Outcome(job.id, job.token, kind, "7", error="ValueError: no")
    run_script(client.redis, build_completion(client.settings, job, outcome, None, worker_id="w1"))


def keys(client: Client) -> QueueKeys:
    return QueueKeys(client.settings.key_prefix, "default")


def test_children_are_appended_to_the_parents_list_and_the_parent_hash_is_not_rewritten(
    client: Client,
) -> None:
    parent = client.enqueue("p").id
    children = [client.enqueue("c", [i], depends_on=[parent]).id for i in range(3)]
    k = keys(client)
    assert client.redis.lrange(k.children(parent), 0, -1) == [k.task(c) for c in children]
    # No per-child field on the parent: its hash does not grow with its fan-out.
    assert not client.redis.hexists(k.task(parent), "children")
    assert not client.redis.hexists(k.task(parent), "child_keys")
    assert client.redis.hget(k.task(parent), "children_key") == k.children(parent)
    assert client.get_task(parent).children == children


def test_the_child_list_releases_children_and_expires_with_its_parent(client: Client) -> None:
    parent = client.enqueue("p").id
    children = [client.enqueue("c", depends_on=[parent]).id for _ in range(3)]
    finish(client, fetch_one(client))
    assert [client.get_task(c).status for c in children] == [TaskStatus.QUEUED] * 3
    assert client.get_task(children[0]).pending_parents == 0
    ttl = client.redis.ttl(keys(client).children(parent))
    assert 0 < ttl <= client.settings.result_ttl_seconds


def test_a_cascade_walks_grandchildren_through_their_own_lists(client: Client) -> None:
    root = client.enqueue("p").id
    child = client.enqueue("c", depends_on=[root]).id
    grandchild = client.enqueue("g", depends_on=[child]).id
    finish(client, fetch_one(client), OutcomeKind.ERROR)
    for task_id in (child, grandchild):
        record = client.get_task(task_id)
        assert (record.status, record.cancel_reason) == (TaskStatus.CANCELLED, "dependency_failed")


def test_a_parent_written_with_the_old_json_child_list_still_releases_its_children(client: Client) -> None:
    parent = client.enqueue("p").id
    child = client.enqueue("c", depends_on=[parent]).id
    k = keys(client)
    # Rewrite the parent as the previous release did: ids and keys in JSON fields, no child list.
    client.redis.delete(k.children(parent))
    client.redis.hdel(k.task(parent), "children_key")
    client.redis.hset(
        k.task(parent), mapping={"children": json.dumps([child]), "child_keys": json.dumps([k.task(child)])}
    )
    assert client.get_task(parent).children == [child]
    finish(client, fetch_one(client))
    assert client.get_task(child).status == TaskStatus.QUEUED


def test_purging_a_dead_parent_deletes_its_child_list(client: Client) -> None:
    parent = client.enqueue("p").id
    client.enqueue("c", depends_on=[parent])
    finish(client, fetch_one(client), OutcomeKind.ERROR)
    assert client.redis.exists(keys(client).children(parent)) == 1
    assert client.purge_dead_letters("default") == 1
    assert client.redis.exists(keys(client).children(parent)) == 0


def test_registering_children_never_grows_the_parent_hash(client: Client) -> None:
    # The parent's hash never holds the list: its size stays put however many children register.
    parent = client.enqueue("p").id
    k = keys(client)
    client.enqueue("c", depends_on=[parent])
    size_after_one = client.redis.memory_usage(k.task(parent))
    for _ in range(300):
        client.enqueue("c", depends_on=[parent])
    assert client.redis.memory_usage(k.task(parent)) == size_after_one
    assert client.redis.llen(k.children(parent)) == 301
