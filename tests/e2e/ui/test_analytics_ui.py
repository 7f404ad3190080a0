"""The Analytics page in a real headless Chromium against a real API process reading a real PostgreSQL
record written by the recorder from what real worker processes did: per queue and per task name, hourly
and daily, dead letters by queue and reason; a hostile task name is shown as text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from record_helpers import drain, make_recorder
from ui_pages import open_ui

from jobqueue import Client
from jobqueue.embedded.redis_server import free_port
from jobqueue.record import rollup
from jobqueue.record.analytics import Granularity

pytestmark = pytest.mark.timeout(150)

# Enqueued as a task name nobody registered: the worker dead-letters it, and the record keeps the name.
HOSTILE = '<img src=x onerror="window.__pwned=1"><b>bold</b>\u202e'


def test_analytics_per_queue_and_task_hourly_and_daily(
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    browser: Any,
    client: Client,
    pg_pool: ConnectionPool,
    database_url: str,
) -> None:
    start_worker("--pool", "thread", "--queues", "default,reports")
    ids = [client.enqueue("add", [i, i]).id for i in range(12)]
    ids += [client.enqueue("sleepy", [0.05], queue="reports").id for _ in range(4)]
    ids += [client.enqueue("fail_with", ["value"]).id for _ in range(2)]
    ids.append(client.enqueue(HOSTILE, []).id)
    wait_until(lambda: all(client.get_task(i).status.is_terminal for i in ids), 60)
    drain(make_recorder(client, pg_pool))
    now = dt.datetime.now(dt.UTC)
    for granularity in Granularity:  # what the recorder's maintenance runs on its interval
        rollup(pg_pool, granularity, now - dt.timedelta(hours=2), now)

    api = start_api(database_url=database_url)
    page = open_ui(browser, api.url, "read-key")
    page.get_by_role("link", name="Analytics", exact=True).click()
    page.get_by_role("heading", name="Analytics", exact=True).wait_for()
    cards = page.locator("#analytics-cards")
    cards.get_by_text("Finished (24 h)").wait_for()
    assert "19" in cards.inner_text()  # 12 + 4 succeeded, 3 dead-lettered
    assert "84.2 %" in cards.inner_text()  # 16 / (16 + 3)

    breakdown = page.locator("#analytics-breakdown")
    breakdown.get_by_role("link", name="reports").wait_for()
    assert breakdown.locator("tbody tr").count() == 2  # default, reports
    dead = page.locator("#analytics-dead-letters")
    dead.get_by_text("not_retryable").wait_for()
    assert "default" in dead.inner_text()
    charts = page.locator("#analytics-charts")
    assert charts.locator("svg rect.bar").count() >= 1  # this hour's finished tasks
    browser.screenshots("analytics-hourly")

    page.get_by_label("Task name").check()
    page.get_by_role("heading", name="By task name").wait_for()
    breakdown.get_by_text("sleepy").wait_for()
    breakdown.get_by_text("<b>bold</b>", exact=False).wait_for()
    assert page.locator("#main img, #main b").count() == 0
    assert page.evaluate("window.__pwned") is None
    browser.screenshots("analytics-by-task")

    page.get_by_label("Daily, last 30 days").check()
    cards.get_by_text("Finished (30 d)").wait_for()
    assert "19" in cards.inner_text()
    charts.get_by_text("Tasks finished per day").wait_for()
    browser.screenshots("analytics-daily")


def test_without_a_record_the_page_says_so_and_a_record_down_is_a_notice(
    start_api: Callable[..., Any], browser: Any
) -> None:
    api = start_api()
    page = open_ui(browser, api.url, "read-key")
    page.goto(f"{api.url}/#/analytics")
    page.locator("#analytics-status", has_text="record_not_configured").wait_for()
    assert page.locator("#notice").is_hidden()

    # Configured but unreachable: a failed update, explained in the notice as on every other page.
    down = start_api(database_url=f"postgresql://jobqueue@127.0.0.1:{free_port()}/jobqueue")
    page = open_ui(browser, down.url, "read-key")
    page.goto(f"{down.url}/#/analytics")
    page.locator("#notice", has_text="record (PostgreSQL) is unavailable").wait_for(timeout=30_000)
    browser.screenshots("analytics-record-down")
