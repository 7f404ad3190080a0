"""Schedule runs: every fire time a scheduler handles (fired, skipped by Forbid, replaced, missed past the
starting deadline, failed to enqueue) reaches ``schedule_runs`` through the schedule event stream and a
real recorder, exactly once, and is listed by the query API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from record_helpers import drain, make_recorder

from jobqueue import App, Client
from jobqueue.keys import GlobalKeys
from jobqueue.record.queries import RecordQueries
from jobqueue.schedules.registry import fire_due_schedules

pytestmark = pytest.mark.timeout(60)


def _fire_until(client: Client, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    def step() -> bool:
        fire_due_schedules(client, "test")
        return predicate()

    wait_until(step, timeout=timeout, interval=0.05)


def _runs(pool: ConnectionPool, schedule: str) -> list[tuple[Any, ...]]:
    with pool.connection() as conn:
        return conn.execute(
            "SELECT status, task_id, replaced_task_id, missed, detail, handled_at >= fire_time"
            " FROM schedule_runs WHERE schedule = %s ORDER BY fire_time",
            (schedule,),
        ).fetchall()


def test_every_fire_and_skipped_slot_is_recorded_once(client: Client, pg_pool: ConnectionPool) -> None:
    app = App(settings=client.settings)
    schedules = app.schedules
    schedules.register("every", cron="* * * * * *", task="add")
    schedules.register("forbid", cron="* * * * * *", task="add", concurrency_policy="Forbid")
    schedules.register("replace", cron="* * * * * *", task="add", concurrency_policy="Replace")
    schedules.register("late", cron="* * * * *", task="add", starting_deadline_seconds=30)
    keys = GlobalKeys(client.settings.key_prefix)
    seconds, _ = client.redis.time()
    ten_minutes_ago = (seconds // 60 - 10) * 60 * 1000
    client.redis.zadd(keys.schedules_due, {"late": ten_minutes_ago})  # as if every scheduler was down
    _fire_until(
        client,
        lambda: (
            schedules.get("every").fired >= 2
            and schedules.get("forbid").skipped >= 1
            and schedules.get("replace").fired >= 2
        ),
    )
    schedules.pause("every"), schedules.pause("forbid"), schedules.pause("replace")
    infos = {i.schedule.name: i for i in schedules.list()}

    recorder = make_recorder(client, pg_pool)
    drain(recorder)
    every = _runs(pg_pool, "every")
    assert len(every) == infos["every"].fired and {r[0] for r in every} == {"fired"}
    assert all(r[1] and r[5] for r in every)  # a task id, handled at or after its fire time
    forbid = _runs(pg_pool, "forbid")
    assert [r[0] for r in forbid].count("skipped") == infos["forbid"].skipped
    assert [r[0] for r in forbid].count("fired") == infos["forbid"].fired == 1
    assert all("still running" in r[4] for r in forbid if r[0] == "skipped")
    replace = _runs(pg_pool, "replace")
    assert [r[0] for r in replace] == ["fired"] * infos["replace"].fired
    # Each fire after the first cancelled the one before it.
    assert [r[2] for r in replace] == [None] + [r[1] for r in replace[:-1]]
    late = _runs(pg_pool, "late")
    missed = [r for r in late if r[0] == "missed"]
    assert len(missed) == 1 and missed[0][3] == infos["late"].missed > 0
    assert sum(r[0] == "fired" for r in late) == infos["late"].fired

    # Recorded once: reading every entry again (positions forgotten) inserts nothing.
    entries = len(client.redis.xrange(keys.schedule_events))
    recorder.close()
    with pg_pool.connection() as conn:
        conn.execute("DELETE FROM record_positions")
    again = make_recorder(client, pg_pool)
    drain(again)
    assert again.stats.recorded == 0 and again.stats.duplicates >= entries
    with pg_pool.connection() as conn:
        [count] = conn.execute("SELECT count(*) FROM schedule_runs").fetchone() or [0]
    assert count == entries

    page = RecordQueries(pg_pool).schedule_runs("every", limit=1)
    assert page.has_more and page.items[0].fire_time == max(
        r.fire_time for r in RecordQueries(pg_pool).schedule_runs("every").items
    )
    assert RecordQueries(pg_pool).schedule_runs("forbid", statuses=["skipped"]).items[0].status == "skipped"
    app.close()


def test_a_fire_that_cannot_enqueue_is_recorded_as_failed(client: Client, pg_pool: ConnectionPool) -> None:
    app = App(settings=client.settings)
    app.schedules.register("big", cron="* * * * * *", task="add", args=["x" * 200])
    # This scheduler refuses payloads the registry accepted (e.g. a lower limit deployed later).
    strict = Client(client.settings.model_copy(update={"max_payload_bytes": 100}))
    _fire_until(
        strict, lambda: bool(client.redis.xlen(GlobalKeys(client.settings.key_prefix).schedule_events))
    )
    drain(make_recorder(client, pg_pool))
    [run] = RecordQueries(pg_pool).schedule_runs("big", limit=1).items
    assert (run.status, run.task_id) == ("failed", None)
    assert run.detail is not None and "over the 100-byte limit" in run.detail
    assert app.schedules.get("big").fired == 0
    strict.close()
    app.close()
