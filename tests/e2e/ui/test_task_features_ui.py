"""The task page in a real headless Chromium, against a real API process, Redis and worker process: the
progress bar of a running task, the EXPIRED badge of a task that expired before it started, and where each
schedule comes from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from ui_pages import open_ui, wait_status

from jobqueue import App, Client, Settings, TaskStatus
from jobqueue.broker.leases import build_fetch
from jobqueue.broker.redis_io import run_script
from jobqueue.services.scheduler import Scheduler

pytestmark = pytest.mark.timeout(150)


def show_task(page: Any, task_id: str) -> None:
    page.evaluate(f"location.hash = '#/tasks/{task_id}'")
    page.locator("#task-status .badge").wait_for()


def test_a_running_task_shows_its_progress_bar(
    start_api: Callable[..., Any], start_worker: Callable[..., Any], browser: Any, client: Client
) -> None:
    start_worker("--pool", "thread", "--concurrency", "1")
    api = start_api()
    page = open_ui(browser, api.url)
    task_id = client.enqueue("report_progress", [3, 10, 60]).id
    show_task(page, task_id)
    wait_status(page, "RUNNING")
    bar = page.get_by_role("progressbar", name="progress")
    page.locator("#task-progress-text", has_text="3 / 10 (30 %)").wait_for(timeout=20_000)
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("3", "10")
    assert page.locator("#task-progress-message").inner_text() == "step 3"
    browser.screenshots("task-progress")
    client.redis.rpush(f"{client.settings.key_prefix}:test:release:{task_id}", "go")
    wait_status(page, "SUCCESS")


def test_an_expired_task_shows_the_expired_badge(
    start_api: Callable[..., Any], browser: Any, client: Client
) -> None:
    api = start_api()
    page = open_ui(browser, api.url)
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.3)
    task_id = client.enqueue("add", [1, 2], queue="later", expires=at).id
    wait_until(lambda: client.redis.time()[0] > at.timestamp() + 1, timeout=10)
    run_script(client.redis, build_fetch(client.settings, "later", 1, "ui-test"))  # a worker's fetch
    assert client.get_task(task_id).status == TaskStatus.EXPIRED
    show_task(page, task_id)
    wait_status(page, "EXPIRED")
    assert page.get_by_role("button", name="Cancel task").is_hidden()
    assert page.get_by_role("button", name="Retry").is_visible()
    assert page.locator("dt", has_text="Expires").is_visible()
    browser.screenshots("task-expired")


def test_the_schedules_page_tells_code_schedules_and_orphans_apart(
    start_api: Callable[..., Any], browser: Any, client: Client, settings: Settings
) -> None:
    def declared(*names: str) -> App:
        app = App(settings=settings)
        for name in names:
            app.periodic(cron="0 4 * * *", name=name)(lambda: None)
        return app

    App(settings=settings).schedules.register("by-hand", cron="0 5 * * *", task="add")
    Scheduler(client, code_schedules=declared("kept", "dropped").periodic_schedules).tick()
    Scheduler(client, code_schedules=declared("kept").periodic_schedules).tick()
    api = start_api()
    page = open_ui(browser, api.url)
    page.get_by_role("link", name="Schedules").click()
    rows = page.locator("#schedule-list tbody tr")
    rows.first.wait_for()
    sources = {
        row.locator("td").nth(0).inner_text(): row.locator("td").nth(1).inner_text() for row in rows.all()
    }
    assert sources == {"by-hand": "api", "kept": "code", "dropped": "code, orphaned"}
    page.get_by_role("button", name="Resume dropped").wait_for()  # paused, not deleted
    browser.screenshots("schedules-sources")
