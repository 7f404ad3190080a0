"""``expires``: a task not started by then is never run and ends EXPIRED, decided by the fetch that
reaches it (lua/_lease.lua). Real Redis, real worker processes, the real recorder and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from record_helpers import drain, make_recorder

from jobqueue import App, Client, Settings, TaskExpired, TaskStatus, ValidationError
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import build_fetch, parse_fetch
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.redis_io import run_script

pytestmark = pytest.mark.timeout(60)


def redis_now(client: Client) -> float:
    seconds, micros = client.redis.time()
    return seconds + micros / 1e6


def soon(client: Client, seconds: float = 0.3) -> dt.datetime:
    """An expiry a moment ahead (on the producer's clock, which is this machine's, as the server's)."""
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)


def wait_past(client: Client, task_id: str) -> None:
    """Wait until the Redis clock has passed the task's expires_at (the condition, not a sleep)."""
    expires_at = client.get_task(task_id).expires_at
    assert expires_at is not None
    wait_until(lambda: redis_now(client) > expires_at + 0.01, timeout=10)


def runs(client: Client) -> list[str]:
    return client.redis.lrange(f"{client.settings.key_prefix}:test:runs", 0, -1)  # type: ignore[return-value]


def fetch_ids(client: Client, n: int, queue: str = "default") -> list[str]:
    reply = run_script(client.redis, build_fetch(client.settings, queue, n, "w1"))
    return [j.id for j in parse_fetch(queue, reply).jobs]


def finished(client: Client, task_id: str, timeout: float = 30) -> Any:
    wait_until(lambda: client.get_task(task_id).status.is_terminal, timeout=timeout)
    return client.get_task(task_id)


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_an_expired_task_never_reaches_user_code_and_ends_expired(
    pool: str, client: Client, start_worker: Callable[..., Any]
) -> None:
    doomed = client.enqueue("record", expires=soon(client))
    kept = client.enqueue("record", expires=3600)
    wait_past(client, doomed.id)
    start_worker("--pool", pool, "--concurrency", "2")
    record = finished(client, doomed.id)
    assert finished(client, kept.id).status == TaskStatus.SUCCESS
    assert record.status == TaskStatus.EXPIRED
    assert (record.attempts, record.started_at, record.worker) == (0, None, None)
    assert record.completed_at is not None and record.completed_at >= record.expires_at
    # The kept task ran; the expired one never did.
    assert {line.split("|")[0] for line in runs(client)} == {kept.id}
    with pytest.raises(TaskExpired) as caught:
        doomed.result(timeout=5)
    assert caught.value.status == "EXPIRED"
    stats = client.redis.hgetall(client.queue_keys("default").stats)
    assert stats["expired"] == "1"
    events = [f for _, f in client.redis.xrange(client.queue_keys("default").events) if f["id"] == doomed.id]
    assert [f["event"] for f in events] == ["enqueued", "expired"]
    assert events[0]["expires_at"] == str(round(record.expires_at * 1000))


def test_a_waiter_is_told_at_once(client: Client, start_worker: Callable[..., Any]) -> None:
    doomed = client.enqueue("record", expires=soon(client))
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            doomed.result(timeout=30)
        except BaseException as exc:
            raised.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_until(lambda: client.redis.hget(client.queue_keys("default").task(doomed.id), "watched"), timeout=10)
    wait_past(client, doomed.id)
    start_worker("--pool", "thread", "--concurrency", "1")
    waiter.join(20)
    assert not waiter.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], TaskExpired)


def test_task_option_and_enqueue_with_override(settings: Settings, client: Client) -> None:
    app = App(settings=settings)

    @app.task(name="record", expires=0.3)
    def record() -> None: ...

    default = record.enqueue()
    longer = record.enqueue_with(expires=3600)
    for handle, ahead in ((default, 0.3), (longer, 3600)):
        expires_at = client.get_task(handle.id).expires_at
        assert expires_at is not None and math.isclose(expires_at - redis_now(client), ahead, abs_tol=0.25)
    wait_past(client, default.id)
    assert fetch_ids(client, 10) == [longer.id]
    assert client.get_task(default.id).status == TaskStatus.EXPIRED
    app.close()


def test_queue_expiry_ends_tasks_that_waited_too_long(
    client: Client, start_worker: Callable[..., Any]
) -> None:
    admin = QueueAdmin(client)
    config = admin.set_expires("slow", 0.3)
    assert config.expires_seconds == 0.3
    waited = client.enqueue("record", queue="slow")
    own = client.enqueue("record", queue="slow", expires=3600)  # a task's own expiry wins
    enqueued_at = client.get_task(waited.id).enqueued_at
    assert enqueued_at is not None
    wait_until(lambda: redis_now(client) > enqueued_at + 0.31, timeout=10)
    start_worker("--pool", "thread", "--concurrency", "1", "--queues", "slow")
    assert finished(client, own.id).status == TaskStatus.SUCCESS
    assert finished(client, waited.id).status == TaskStatus.EXPIRED
    assert admin.set_expires("slow", None).expires_seconds is None


def test_a_child_of_an_expired_parent_is_cancelled(client: Client) -> None:
    parent = client.enqueue("record", expires=soon(client))
    child = client.enqueue("record", depends_on=[parent.id])
    wait_past(client, parent.id)
    assert (
        parse_fetch(
            "default", run_script(client.redis, build_fetch(client.settings, "default", 5, "w1"))
        ).jobs
        == []
    )
    assert client.get_task(parent.id).status == TaskStatus.EXPIRED
    record = client.get_task(child.id)
    assert (record.status, record.cancel_reason) == (TaskStatus.CANCELLED, "dependency_failed")
    # A task enqueued after its parent expired is born cancelled, as after a failed parent.
    late = client.enqueue("record", depends_on=[parent.id])
    assert late.status() == TaskStatus.CANCELLED


def test_a_unique_task_that_expired_lets_a_rerun_in(client: Client) -> None:
    first = client.enqueue("record", [1], unique=True, unique_rerun=True, expires=soon(client))
    wait_past(client, first.id)
    run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
    assert client.get_task(first.id).status == TaskStatus.EXPIRED
    second = client.enqueue("record", [1], unique=True, unique_rerun=True)
    assert second.id != first.id and not second.deduplicated


def test_a_backlog_that_expired_at_once_is_ended_in_bounded_calls(client: Client) -> None:
    at = soon(client, 1.0)
    handles = client.enqueue_many([make_request("record", expires=at) for _ in range(1500)])
    ids = [h.id for h in handles]
    kept = client.enqueue("record")
    wait_past(client, ids[-1])
    fetch = build_fetch(client.settings, "default", 1, "w1")
    first = parse_fetch("default", run_script(client.redis, fetch))
    assert first.jobs == []  # stopped at the bound of 1000 expiries, with work left ...
    assert client.redis.llen(client.queue_keys("default").wake) == 1  # ... and a worker woken for it
    second = parse_fetch("default", run_script(client.redis, fetch))
    assert [j.id for j in second.jobs] == [kept.id]
    assert {client.get_task(i).status for i in ids} == {TaskStatus.EXPIRED}


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        (-1, "must be a number of seconds > 0"),
        (0, "must be a number of seconds > 0"),
        (float("nan"), "must be a number of seconds > 0 or a datetime"),
        (float("inf"), "must be a number of seconds > 0 or a datetime"),
        (True, "must be a number of seconds > 0 or a datetime"),
        ("10", "must be a number of seconds > 0 or a datetime"),
        (10**400, "must be at most"),
        (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), "is in the past"),
        (dt.datetime(9999, 12, 31, 23, 59), "must be at most"),
    ],
)
def test_a_bad_or_past_expiry_is_refused_naming_the_field(client: Client, expires: Any, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        client.enqueue("record", expires=expires)
    assert caught.value.field == "expires" and message in caught.value.message
    assert client.redis.hlen(client.queue_keys("default").stats) == 0  # nothing enqueued


def test_an_expiry_before_the_eta_is_refused(client: Client) -> None:
    with pytest.raises(ValidationError) as caught:
        client.enqueue("record", countdown=60, expires=30)
    assert caught.value.field == "expires" and "eta" in caught.value.message


def test_an_invalid_task_option_is_refused_at_decoration(settings: Settings) -> None:
    app = App(settings=settings)
    with pytest.raises(ValidationError) as caught:

        @app.task(expires=-5)
        def nope() -> None: ...

    assert caught.value.field == "expires"


def test_the_recorder_keeps_expired_tasks(client: Client, pg_pool: ConnectionPool) -> None:
    doomed = client.enqueue("record", expires=soon(client))
    wait_past(client, doomed.id)
    run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
    recorder = make_recorder(client, pg_pool)
    drain(recorder)
    with pg_pool.connection() as conn:
        row = conn.execute(
            b"SELECT status, completed_at IS NOT NULL, attempts FROM tasks WHERE id = %s", (doomed.id,)
        ).fetchone()
    assert row == ("EXPIRED", True, 0)
