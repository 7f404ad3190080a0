"""Flow control and schedules in the web UI, in a real headless Chromium against a real API and Redis (and
the PostgreSQL record for a schedule's run history)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from record_helpers import drain, make_recorder
from ui_pages import open_ui

from jobqueue import App, Client
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.keys import GlobalKeys
from jobqueue.models import Priority
from jobqueue.schedules.registry import ScheduleRegistry, fire_due_schedules

pytestmark = pytest.mark.timeout(150)


def test_pause_resume_and_rate_limit_from_the_queue_page(
    start_api: Callable[..., Any], browser: Any, client: Client
) -> None:
    client.enqueue("add", [1, 2])  # registers the queue
    api = start_api()
    page = open_ui(browser, api.url)
    page.goto(f"{api.url}/#/queues/default")
    page.locator("#flow-state", has_text="running").wait_for()
    page.get_by_role("button", name="Pause", exact=True).click()
    page.locator("#flow-state", has_text="paused").wait_for()
    admin = QueueAdmin(client)
    assert admin.is_paused("default")
    page.get_by_label("Rate limit (tasks)").fill("120")
    page.get_by_label("Per (seconds)").fill("60")
    page.get_by_label("Burst").fill("20")
    page.get_by_role("button", name="Set rate limit").click()
    page.locator("#flow-facts", has_text="120 per 60 s, burst 20").wait_for()
    rate = admin.get_rate_limit("default")
    assert rate is not None and (rate.limit, rate.period_seconds, rate.burst) == (120, 60.0, 20)
    # One priority level's own limit, beside the queue's: set, shown, removed, the queue's untouched.
    page.get_by_label("Applies to").select_option("low")
    page.get_by_label("Rate limit (tasks)").fill("5")
    page.get_by_label("Per (seconds)").fill("1")
    page.get_by_label("Burst").fill("2")
    page.get_by_role("button", name="Set rate limit").click()
    page.locator("#flow-level-limits", has_text="low: 5 per s, burst 2").wait_for()
    assert set(admin.get_config("default").priority_rate_limits) == {Priority.LOW}
    page.get_by_role("button", name="Remove rate limit").click()
    page.locator("#flow-level-limits", has_text="none").wait_for()
    assert admin.get_rate_limit("default") is not None
    page.get_by_label("Applies to").select_option("")
    # A refused change shows the API's own message, naming the field.
    page.get_by_label("Rate limit (tasks)").fill("0")
    page.get_by_role("button", name="Set rate limit").click()
    page.locator("#flow-message", has_text="field: limit").wait_for()
    page.get_by_label("Max in flight (empty: no limit)").fill("3")
    page.get_by_role("button", name="Set max in flight").click()
    wait_until(lambda: admin.get_config("default").max_in_flight == 3, timeout=10)
    browser.screenshots("queue-flow-control")
    page.get_by_role("button", name="Resume").click()
    page.locator("#flow-state", has_text="running").wait_for()
    assert not admin.is_paused("default")


def test_create_pause_and_delete_a_schedule(
    start_api: Callable[..., Any], browser: Any, client: Client
) -> None:
    api = start_api()
    page = open_ui(browser, api.url)
    page.get_by_role("link", name="Schedules").click()
    page.get_by_role("heading", name="Schedules", exact=True).wait_for()
    page.get_by_label("Schedule name").fill("nightly-report")
    page.get_by_label("Cron").fill("0 2 * * *")
    page.get_by_label("Task", exact=True).fill("add")
    page.get_by_label("Time zone").fill("America/New_York")
    page.get_by_label("Args (JSON list)").fill("[1, 2]")
    page.get_by_role("button", name="Save schedule").click()
    page.locator("#schedule-list", has_text="nightly-report").wait_for()
    registry = ScheduleRegistry(client)
    info = registry.get("nightly-report")
    assert info.schedule.timezone == "America/New_York" and info.next_fire_at is not None
    # A bad time zone is refused with the field named.
    page.get_by_label("Schedule name").fill("broken")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_role("button", name="Save schedule").click()
    page.locator("#schedule-message", has_text="timezone").wait_for()
    browser.screenshots("schedules")
    page.get_by_role("button", name="Pause nightly-report").click()
    page.get_by_role("button", name="Resume nightly-report").wait_for()
    assert registry.get("nightly-report").paused
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete nightly-report").click()
    page.locator("#schedule-list", has_text="No schedules yet").wait_for()
    assert registry.list() == []


def test_run_history_of_a_schedule_from_the_record(
    start_api: Callable[..., Any],
    browser: Any,
    client: Client,
    pg_pool: ConnectionPool,
    database_url: str,
) -> None:
    app = App(settings=client.settings)
    try:
        # Ten minutes of a per-minute schedule missed (every scheduler down); a per-second Forbid schedule
        # fires once and then skips while its first task waits (no worker runs here).
        app.schedules.register("late", cron="* * * * *", task="add", starting_deadline_seconds=30)
        app.schedules.register("forbid", cron="* * * * * *", task="add", concurrency_policy="Forbid")
        keys = GlobalKeys(client.settings.key_prefix)
        seconds, _ = client.redis.time()
        client.redis.zadd(keys.schedules_due, {"late": (seconds // 60 - 10) * 60 * 1000})

        def missed_fired_and_skipped() -> bool:
            fire_due_schedules(client, "test")
            return app.schedules.get("late").missed > 0 and app.schedules.get("forbid").skipped >= 2

        wait_until(missed_fired_and_skipped, timeout=10, interval=0.05)
        app.schedules.pause("forbid")
        late, forbid = app.schedules.get("late"), app.schedules.get("forbid")
    finally:
        app.close()
    drain(make_recorder(client, pg_pool))

    page = open_ui(browser, start_api(database_url=database_url).url)
    page.get_by_role("link", name="Schedules").click()
    page.get_by_role("button", name="Runs of late").click()
    page.get_by_role("heading", name="Run history of late").wait_for()
    runs = page.locator("#schedule-runs")
    runs.locator("tbody tr", has_text="missed").wait_for()
    assert f"{late.missed} fire time(s) missed from here" in runs.inner_text()

    page.get_by_role("button", name="Runs of forbid").click()
    page.get_by_role("heading", name="Run history of forbid").wait_for()
    runs.locator("tbody tr", has_text="skipped").first.wait_for()
    text = runs.inner_text()
    assert "still running" in text and "fired" in text
    assert forbid.last_task_id is not None and forbid.last_task_id in text
    browser.screenshots("schedule-runs")
    # The task link opens the task the schedule enqueued.
    runs.get_by_role("link", name=forbid.last_task_id).click()
    page.get_by_role("heading", name="Task add").wait_for()
    assert forbid.last_task_id in page.url


def test_run_history_without_a_record_says_what_it_needs(
    start_api: Callable[..., Any], browser: Any, client: Client
) -> None:
    App(settings=client.settings).schedules.register("nightly", cron="0 2 * * *", task="add")
    page = open_ui(browser, start_api().url)
    page.get_by_role("link", name="Schedules").click()
    page.get_by_role("button", name="Runs of nightly").click()
    page.locator("#schedule-runs-message", has_text="reads the PostgreSQL record").wait_for()
    assert "HTTP 503" in page.locator("#schedule-runs-message").inner_text()
