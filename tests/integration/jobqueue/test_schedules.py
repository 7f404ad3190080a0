"""Recurring schedules on a real Redis: registry, two schedulers side by side, policies, missed fires."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time

import pytest
from jq_testing import wait_until

from jobqueue import App, Client, Settings, TaskStatus
from jobqueue.errors import ScheduleNotFound, ValidationError
from jobqueue.keys import GlobalKeys
from jobqueue.schedules.registry import fire_due_schedules
from jobqueue.services.scheduler import Scheduler

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def app(settings: Settings) -> App:
    a = App(settings=settings)
    yield a
    a.close()


def fire_ms(task_id: str) -> int:
    return int(task_id.split(".")[1][:12], 16)


def ready_ids(client: Client, queue: str = "default") -> list[str]:
    return client.redis.lrange(client.queue_keys(queue).ready("medium"), 0, -1)


def test_register_list_pause_resume_delete(app: App) -> None:
    info = app.schedules.register(
        "daily_cleanup", cron="0 2 * * *", task="cleanup", timezone="America/New_York", args=[7],
        kwargs={"dry": True}, queue="maintenance", priority="low",
    )  # fmt: skip
    assert info.next_fire_at is not None and info.next_fire_at > dt.datetime.now(dt.UTC)
    assert info.next_fire_at.astimezone(info.schedule.cron_spec.zone).hour in (2, 3)  # 3: the DST-gap day
    assert (info.last_fire_at, info.fired, info.paused) == (None, 0, False)
    app.schedules.register("hourly", cron="@hourly", task="ping")
    assert [i.schedule.name for i in app.schedules.list()] == ["daily_cleanup", "hourly"]
    app.schedules.pause("hourly")
    paused = app.schedules.get("hourly")
    assert paused.paused and paused.next_fire_at is None
    # Re-registering (e.g. at every deploy) keeps a paused schedule paused.
    assert app.schedules.register("hourly", cron="30 * * * *", task="ping").paused
    app.schedules.resume("hourly")
    resumed = app.schedules.get("hourly")
    assert not resumed.paused and resumed.next_fire_at is not None and resumed.next_fire_at.minute == 30
    app.schedules.delete("hourly")
    with pytest.raises(ScheduleNotFound):
        app.schedules.get("hourly")
    with pytest.raises(ScheduleNotFound):
        app.schedules.pause("hourly")


def test_bad_cron_and_timezone_are_validation_errors(app: App) -> None:
    with pytest.raises(ValidationError) as info:
        app.schedules.register("x", cron="every day", task="t")
    assert info.value.field == "cron"
    with pytest.raises(ValidationError) as info:
        app.schedules.register("x", cron="@daily", task="t", timezone="America/Gotham")
    assert info.value.field == "timezone"
    assert app.schedules.list() == []


def test_two_schedulers_fire_a_per_second_schedule_exactly_once_per_second(settings: Settings) -> None:
    app = App(settings=settings)
    app.schedules.register("tick", cron="* * * * * *", task="add", args=[1, 1])
    schedulers = [Scheduler(Client(settings), interval_seconds=1.0) for _ in range(2)]
    threads = [threading.Thread(target=s.run, daemon=True) for s in schedulers]
    for t in threads:
        t.start()
    time.sleep(5.5)
    app.schedules.pause("tick")  # freeze the window before stopping, so no fire is half-done
    for s in schedulers:
        s.stop()
    for t in threads:
        t.join(10)
    ids = ready_ids(app.client)
    fires = sorted(fire_ms(i) for i in ids)
    assert len(fires) >= 4
    assert len(set(fires)) == len(fires)
    # One fire per second, no gaps: consecutive whole seconds.
    assert all(f % 1000 == 0 for f in fires)
    assert [b - a for a, b in itertools.pairwise(fires)] == [1000] * (len(fires) - 1)
    info = app.schedules.get("tick")
    assert info.fired == len(fires)
    events = app.client.redis.xrange(app.client.queue_keys("default").events)
    assert sum(e[1]["event"] == "enqueued" for e in events) == len(fires)
    # Both schedulers took part (each claim records its claimer).
    keys = GlobalKeys(settings.key_prefix)
    claimers = {app.client.redis.get(keys.schedule_claim("tick", f)) for f in fires}
    assert claimers <= {s.scheduler_id for s in schedulers}
    for s in schedulers:
        s.client.close()
    app.close()


def _fire_until(client: Client, predicate: object, timeout: float = 5.0) -> None:
    def step() -> bool:
        fire_due_schedules(client, "test")
        return bool(predicate())  # type: ignore[operator]

    wait_until(step, timeout=timeout, interval=0.05)


def test_forbid_skips_while_the_previous_task_is_not_final(app: App) -> None:
    client = app.client
    app.schedules.register("f", cron="* * * * * *", task="add", concurrency_policy="Forbid")
    _fire_until(client, lambda: app.schedules.get("f").fired == 1)
    first = app.schedules.get("f").last_task_id
    assert first is not None and client.get_task(first).status == TaskStatus.QUEUED
    _fire_until(client, lambda: app.schedules.get("f").skipped >= 1)
    assert app.schedules.get("f").fired == 1
    client.cancel(first)  # final now
    _fire_until(client, lambda: app.schedules.get("f").fired == 2)
    assert app.schedules.get("f").last_task_id != first


def test_replace_cancels_the_previous_task_and_fires(app: App) -> None:
    client = app.client
    app.schedules.register("r", cron="* * * * * *", task="add", concurrency_policy="Replace")
    _fire_until(client, lambda: app.schedules.get("r").fired == 1)
    first = app.schedules.get("r").last_task_id
    assert first is not None
    _fire_until(client, lambda: app.schedules.get("r").fired == 2)
    assert client.get_task(first).status == TaskStatus.CANCELLED
    second = app.schedules.get("r").last_task_id
    assert second != first and client.get_task(second).status == TaskStatus.QUEUED


def test_allow_fires_while_the_previous_task_waits(app: App) -> None:
    client = app.client
    app.schedules.register("a", cron="* * * * * *", task="add")
    _fire_until(client, lambda: app.schedules.get("a").fired == 2)
    assert len(ready_ids(client)) == 2


def test_fires_older_than_the_starting_deadline_are_skipped_and_counted(app: App) -> None:
    client = app.client
    app.schedules.register("m", cron="* * * * *", task="add", starting_deadline_seconds=30)
    keys = GlobalKeys(client.settings.key_prefix)
    seconds, _ = client.redis.time()
    ten_minutes_ago = (seconds // 60 - 10) * 60 * 1000
    client.redis.zadd(keys.schedules_due, {"m": ten_minutes_ago})  # as if every scheduler was down
    report = fire_due_schedules(client, "test")
    info = app.schedules.get("m")
    # 11 fire times are due (the minute ten minutes ago .. this minute); only one within the last 30 s
    # may still start.
    assert (report.missed, report.fired) == (info.missed, info.fired)
    assert info.missed + info.fired == 11 and info.fired <= 1
    assert info.next_fire_at is not None and info.next_fire_at > dt.datetime.now(dt.UTC)
    # A second pass (or another scheduler) finds nothing left to do.
    again = fire_due_schedules(client, "other")
    assert (again.fired, again.missed) == (0, 0)


def test_a_paused_schedule_never_fires(app: App) -> None:
    client = app.client
    app.schedules.register("p", cron="* * * * * *", task="add", paused=True)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        assert fire_due_schedules(client, "test").fired == 0
        time.sleep(0.1)
    assert ready_ids(client) == []


def test_a_broken_schedule_does_not_stop_the_others(app: App) -> None:
    client = app.client
    app.schedules.register("good", cron="* * * * * *", task="add")
    app.schedules.register("broken", cron="* * * * * *", task="add")
    keys = GlobalKeys(client.settings.key_prefix)
    spec = client.redis.hget(keys.schedules, "broken").replace("* * * * * *", "not cron")
    client.redis.hset(keys.schedules, "broken", spec)  # as if written by a buggy tool
    _fire_until(client, lambda: app.schedules.get("good").fired >= 1)
    assert app.schedules.get("broken").fired == 0
