"""The query API over a recorded workload: search, history, dead letters."""

from __future__ import annotations

import datetime as dt

import pytest
from psycopg_pool import ConnectionPool
from record_helpers import add_event, drain, known_workload, make_recorder

from jobqueue import Client
from jobqueue.errors import ValidationError
from jobqueue.record.queries import RecordQueries, SortKey, TaskSearch, TimeField

pytestmark = pytest.mark.timeout(60)

BASE = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def recorded(client: Client, pg_pool: ConnectionPool) -> dict[str, list[str]]:
    ids = known_workload(client, int(BASE.timestamp() * 1000))
    drain(make_recorder(client, pg_pool))
    return ids


def test_search_by_status_name_queue_and_error_text(
    pg_pool: ConnectionPool, recorded: dict[str, list[str]]
) -> None:
    q = RecordQueries(pg_pool)
    failed = q.search_tasks(TaskSearch(statuses=["FAILED"]))
    assert {t.id for t in failed.items} == set(recorded["bad"])
    assert all(t.dead_letter_reason == "max_retries_exceeded" and t.attempts == 2 for t in failed.items)
    assert len(q.search_tasks(TaskSearch(name="work", queue="b", limit=100)).items) == 20
    # '%' in the search text is literal: "100%" must not match "1000".
    full = q.search_tasks(TaskSearch(error_contains="100% full"))
    assert {t.id for t in full.items} == set(recorded["bad"][:5])
    assert q.search_tasks(TaskSearch(error_contains="DISK 1000")).items[0].error == "OSError: disk 1000 full"


def test_search_pages_sorts_and_filters_by_time(
    pg_pool: ConnectionPool, recorded: dict[str, list[str]]
) -> None:
    q = RecordQueries(pg_pool)
    search = TaskSearch(name="work", queue="a", sort=SortKey.DURATION, limit=30)
    first = q.search_tasks(search)
    assert [t.duration_ms for t in first.items] == list(range(100, 70, -1)) and first.has_more
    last = q.search_tasks(TaskSearch(name="work", queue="a", sort=SortKey.DURATION, limit=30, offset=90))
    assert [t.duration_ms for t in last.items] == list(range(10, 0, -1)) and not last.has_more
    ascending = q.search_tasks(TaskSearch(queue="a", sort=SortKey.ENQUEUED_AT, descending=False, limit=1))
    assert ascending.items[0].id == recorded["work"][0]
    # The first ten 'work' tasks were enqueued 200 ms apart from BASE.
    window = TaskSearch(since=BASE, until=BASE + dt.timedelta(milliseconds=2000), limit=100)
    assert {t.id for t in q.search_tasks(window).items} == set(recorded["work"][:10])
    by_completion = TaskSearch(
        time_field=TimeField.COMPLETED_AT, since=BASE + dt.timedelta(minutes=10), statuses=["CANCELLED"]
    )
    assert q.search_tasks(by_completion).items == []
    with pytest.raises(ValidationError):
        q.search_tasks(TaskSearch(limit=0))
    with pytest.raises(ValidationError):
        q.search_tasks(TaskSearch(since=dt.datetime(2026, 1, 1)))  # naive datetimes are refused


def test_task_history_lists_every_transition_and_the_failed_attempts(
    pg_pool: ConnectionPool, recorded: dict[str, list[str]]
) -> None:
    history = RecordQueries(pg_pool).task_history(recorded["bad"][0])
    assert history is not None
    assert history.task.name == "bad" and history.task.args == [] and history.task.retries == 1
    assert [(e.event, e.attempt) for e in history.events] == [
        ("enqueued", None),
        ("started", 1),
        ("retrying", 1),
        ("started", 2),
        ("dead_lettered", 2),
    ]
    assert [
        (f.attempt, f.error, f.data["backoff_ms"] if "backoff_ms" in f.data else None)
        for f in history.failures
    ] == [
        (1, "OSError: disk 100% full", "10"),
        (2, "OSError: disk 100% full", None),
    ]
    assert RecordQueries(pg_pool).task_history("a.nothing") is None


def test_dead_letters_filters_and_replay_closes_them(
    client: Client, pg_pool: ConnectionPool, recorded: dict[str, list[str]]
) -> None:
    q = RecordQueries(pg_pool)
    page = q.dead_letters(queue="a", name="bad", reason="max_retries_exceeded")
    assert len(page.items) == 10 and not page.has_more
    assert q.dead_letters(queue="b").items == []
    assert len(q.dead_letters(error_contains="100%").items) == 5
    replayed = recorded["bad"][0]
    replay_ms = int((BASE + dt.timedelta(minutes=40)).timestamp() * 1000)
    add_event(client, "a", replayed, "replayed", replay_ms, reset="1")
    drain(make_recorder(client, pg_pool))
    assert replayed not in {d.task_id for d in q.dead_letters().items}
    closed = {d.task_id: d for d in q.dead_letters(include_closed=True).items}
    assert closed[replayed].replayed_at == BASE + dt.timedelta(minutes=40)
    task = q.get_task(replayed)
    assert task is not None
    assert (task.status, task.completed_at, task.dead_letter_reason, task.error) == (
        "QUEUED",
        None,
        None,
        "OSError: disk 100% full",
    )
