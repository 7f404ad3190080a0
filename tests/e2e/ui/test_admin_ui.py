"""Flow control and schedules in the web UI, in a real headless Chromium against a real API and Redis."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until

from jobqueue import Client
from jobqueue.queue_admin import QueueAdmin
from jobqueue.schedules import ScheduleRegistry

pytestmark = pytest.mark.timeout(150)


def sign_in(browser: Any, url: str) -> Any:
    page = browser.page
    page.goto(url)
    page.locator("#login").wait_for(state="visible")
    page.get_by_label("API key").fill("admin-key")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    return page


def test_pause_resume_and_rate_limit_from_the_queue_page(
    start_api: Callable[..., Any], browser: Any, client: Client
) -> None:
    client.enqueue("add", [1, 2])  # registers the queue
    api = start_api()
    page = sign_in(browser, api.url)
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
    page = sign_in(browser, api.url)
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
