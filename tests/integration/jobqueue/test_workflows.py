"""Workflows end to end: real worker processes run chains, diamonds and chords."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import jq_test_app
import pytest
from jq_testing import runs, wait_until

from jobqueue import App, Client, Settings, TaskStatus, ValidationError
from jobqueue.broker.workflows import submit
from jobqueue.canvas import chain, chord, dag, group

pytestmark = pytest.mark.timeout(60)

WORKER = ("--pool", "thread", "--concurrency", "4")


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = App(settings=settings)
    yield application
    application.close()


def test_diamond_runs_each_task_once_and_the_join_last(client: Client, start_worker: Callable) -> None:
    rec = jq_test_app.record
    flow = submit(
        client,
        dag(
            {"a": rec.si(sleep=0.05), "b": rec.si(sleep=0.2), "c": rec.si(sleep=0.05), "d": rec.si()},
            {"b": ["a"], "c": ["a"], "d": ["b", "c"]},
        ),
    )
    a, b, c, d = (flow.labels[x].id for x in "abcd")
    assert client.get_task(d).status == TaskStatus.PENDING
    assert client.get_task(a).children == [b, c] and client.get_task(d).parents == [b, c]
    start_worker(*WORKER)
    start_worker(*WORKER)
    assert flow.result(timeout=30) == d
    events = [(task_id, what) for task_id, what, _ in runs(client)]
    assert sorted(task_id for task_id, what in events if what == "start") == sorted([a, b, c, d])
    assert events.index((d, "start")) > max(events.index((x, "done")) for x in (a, b, c))
    assert events.index((a, "done")) < min(events.index((x, "start")) for x in (b, c))


def test_failed_root_cancels_every_descendant(client: Client, start_worker: Callable) -> None:
    rec = jq_test_app.record
    flow = submit(
        client,
        dag(
            {"a": jq_test_app.fail_with.si("value"), "b": rec.si(), "c": rec.si(), "d": rec.si()},
            {"b": ["a"], "c": ["a"], "d": ["b", "c"]},
        ),
    )
    start_worker(*WORKER)
    a = client.wait(flow.labels["a"].id, timeout=30)
    assert a.status == TaskStatus.FAILED
    for label in "bcd":
        record = client.wait(flow.labels[label].id, timeout=5)
        assert (record.status, record.cancel_reason) == (TaskStatus.CANCELLED, "dependency_failed")
    assert runs(client) == []


def test_chain_passes_each_result_to_the_next(app: App, start_worker: Callable) -> None:
    add = jq_test_app.add
    start_worker(*WORKER)
    assert chain(add.s(1, 2), add.s(10), add.s(100)).apply(app).result(timeout=30) == 113
    assert (add.s(1, 1) | add.si(5, 5) | add.s(1)).apply(app).result(timeout=30) == 11


def test_chord_callback_runs_once_when_members_finish_together(
    app: App, client: Client, start_worker: Callable
) -> None:
    start_worker(*WORKER)
    start_worker(*WORKER)
    wait_until(lambda: len(client.list_workers()) == 2, timeout=20)
    # 8 members on 2 x 4 slots, all finishing at the same instant: their acks race for the callback.
    at = time.time() + 1.0
    members = group(jq_test_app.add_at.s(i, i, at) for i in range(8))
    flow = chord(members, jq_test_app.record_sum.s()).apply(app)
    assert flow.result(timeout=30) == sum(2 * i for i in range(8))
    callback = flow.sinks[0].id
    wait_until(lambda: len(runs(client)) >= 2)
    time.sleep(0.5)  # a second, wrong release would have started by now
    assert [what for task_id, what, _ in runs(client) if task_id == callback] == ["start", "done"]
    workers = {client.get_task(t.id).worker for t in flow.tasks[:-1]}
    assert len(workers) == 2


def test_cycle_is_rejected_at_submit_and_nothing_is_enqueued(client: Client) -> None:
    add = jq_test_app.add
    with pytest.raises(ValidationError, match="cycle"):
        submit(client, dag({"a": add.s(1, 1), "b": add.s(2, 2)}, {"a": ["b"], "b": ["a"]}))
    with pytest.raises(ValidationError, match="unknown parent"):
        submit(client, dag({"a": add.s(1, 1)}, {"a": ["default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f"]}))
    assert client.queue_depth("default").total_ready == 0
    assert client.redis.hget(client.queue_keys("default").stats, "enqueued") is None
