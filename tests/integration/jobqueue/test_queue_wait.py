"""The queue wait the fetch script reports counts from when a task last became ready, on the Redis
clock: its enqueue, its eta, a hand-back, or its last parent's success; never from an earlier wait."""

from __future__ import annotations

import time

import pytest

from jobqueue import Client
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.leases import FetchReply, Outcome, OutcomeKind, build_fetch, build_release, parse_fetch
from jobqueue.broker.redis_io import run_script

pytestmark = pytest.mark.timeout(30)


def fetch(client: Client, n: int = 10) -> FetchReply:
    return parse_fetch("default", run_script(client.redis, build_fetch(client.settings, "default", n, "w1")))


def test_wait_counts_from_enqueue_and_from_the_eta_of_a_delayed_task(client: Client) -> None:
    ready = client.enqueue("add", [1, 1])
    delayed = client.enqueue("add", [2, 2], countdown=0.3)
    time.sleep(0.8)
    reply = fetch(client)
    waits = dict(zip((j.id for j in reply.jobs), reply.queue_wait_ms, strict=True))
    assert waits[ready.id] >= 800
    # Both measured at the same instant inside one script: the delayed one waited 0.3 s less (plus the
    # moment between the two enqueues).
    assert 300 <= waits[ready.id] - waits[delayed.id] < 500


def test_a_handed_back_task_waits_from_its_hand_back(client: Client) -> None:
    client.enqueue("add", [1, 1])
    time.sleep(0.6)
    (job,) = fetch(client).jobs
    time.sleep(0.6)  # running: not waiting
    assert run_script(client.redis, build_release(client.settings, job, worker_id="w1")) == [4]
    reply = fetch(client)
    assert [j.id for j in reply.jobs] == [job.id]
    assert reply.queue_wait_ms[0] < 500


def test_a_child_waits_from_its_parents_success(client: Client) -> None:
    parent = client.enqueue("add", [1, 1])
    child = client.enqueue("add", [2, 2], depends_on=[parent.id])
    (job,) = fetch(client).jobs
    time.sleep(0.8)  # the parent runs; the child is PENDING, not waiting in the queue
    outcome = Outcome(job.id, job.token, OutcomeKind.SUCCESS, "2")
    ack = build_completion(client.settings, job, outcome, None, worker_id="w1")
    assert run_script(client.redis, ack) == [1]
    reply = fetch(client)
    assert [j.id for j in reply.jobs] == [child.id]
    assert reply.queue_wait_ms[0] < 500
