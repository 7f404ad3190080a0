"""The web UI in a real headless Chromium against a real API process, Redis and worker processes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from record_helpers import drain, make_recorder
from ui_pages import open_ui, wait_status

from jobqueue import Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.embedded.redis_server import free_port
from jobqueue.models import TaskStatus

pytestmark = pytest.mark.timeout(150)

TASK_URL = re.compile(r"#/tasks/(default\.[0-9a-f]{32})$")


def sign_in(page: Any, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def submit_form(page: Any) -> Any:
    """The submit form (the search form above it has its own name and queue fields)."""
    return page.locator("#submit-form")


def submit_task(page: Any, name: str, args: str, **fields: str) -> str:
    page.get_by_role("link", name="Tasks", exact=True).click()
    submit_form(page).get_by_label("Task name").fill(name)
    submit_form(page).get_by_label("Args (JSON list)").fill(args)
    for label, value in fields.items():
        submit_form(page).get_by_label(label).fill(value)
    page.get_by_role("button", name="Submit task").click()
    page.wait_for_url(TASK_URL)
    match = TASK_URL.search(page.url)
    assert match
    return match.group(1)


def test_login_wrong_key_and_missing_scope(start_api: Callable[..., Any], browser: Any) -> None:
    api = start_api()
    page = browser.page
    page.goto(api.url)
    # No key yet: the API's 401 message is shown next to the key box.
    page.locator("#login").wait_for(state="visible")
    assert "missing bearer API key" in page.locator("#login-message").inner_text()
    browser.screenshots("login")
    sign_in(page, "not-a-key")
    page.locator("#login-message", has_text="unknown API key").wait_for()
    sign_in(page, "read-key")
    page.get_by_role("heading", name="Overview").wait_for()
    assert page.locator("#login").is_hidden()
    # A read-only key may look but not submit; the API's 403 message says why.
    page.get_by_role("link", name="Tasks", exact=True).click()
    submit_form(page).get_by_label("Task name").fill("add")
    page.get_by_role("button", name="Submit task").click()
    page.locator("#submit-message", has_text="lacks the 'submit' scope").wait_for()
    assert "HTTP 403" in page.locator("#submit-message").inner_text()
    # Signing out forgets the key: the next request is a 401 and the key box returns.
    page.get_by_role("button", name="Sign out").click()
    page.locator("#login").wait_for(state="visible")
    assert page.evaluate("sessionStorage.getItem('jobqueue.apiKey')") is None


def test_submit_task_and_watch_it_complete(
    start_api: Callable[..., Any], start_worker: Callable[..., Any], browser: Any, client: Client
) -> None:
    start_worker("--worker-id", "worker-a")
    api = start_api()
    page = open_ui(browser, api.url)

    # Bad JSON is caught before the request and the field is marked.
    page.get_by_role("link", name="Tasks", exact=True).click()
    form = submit_form(page)
    form.get_by_label("Task name").fill("add")
    form.get_by_label("Args (JSON list)").fill("[2, 3")
    page.get_by_role("button", name="Submit task").click()
    page.locator("#submit-message", has_text="args: not valid JSON").wait_for()
    assert form.get_by_label("Args (JSON list)").get_attribute("aria-invalid") == "true"
    # The API's own validation error names its field too.
    form.get_by_label("Args (JSON list)").fill("[2, 3]")
    form.get_by_label("Queue").fill("bad queue")
    page.get_by_role("button", name="Submit task").click()
    page.locator("#submit-message", has_text="(field: queue)").wait_for()
    assert form.get_by_label("Queue").get_attribute("aria-invalid") == "true"
    browser.screenshots("tasks-invalid")
    form.get_by_label("Queue").fill("default")
    assert form.get_by_label("Queue").get_attribute("aria-invalid") is None  # editing clears the mark

    task_id = submit_task(page, "add", "[2, 3]")
    wait_status(page, "SUCCESS")
    assert page.get_by_label("result", exact=True).inner_text().strip() == "5"
    assert client.get_task(task_id).result == 5
    browser.screenshots("task-detail")

    # Several seconds of work for the 4 worker slots, so the overview shows depth, in-flight tasks
    # and throughput while it polls; one bad task lowers the success rate, one waits for later.
    for i in range(80):
        client.enqueue("sleepy", [0.4], priority=["high", "medium", "low"][i % 3])
    client.enqueue("fail_with", ["value"])
    client.enqueue("add", [0, 0], countdown=300)
    page.get_by_role("link", name="Overview").click()
    rows = page.locator("#overview-queues tbody tr")
    rows.first.wait_for()
    assert rows.first.locator("td").first.inner_text() == "default"
    page.locator("#overview-workers", has_text="worker-a").wait_for()
    page.locator("path.line").first.wait_for()
    page.wait_for_timeout(4_500)  # a few more samples
    browser.screenshots("overview")

    page.get_by_role("link", name="default", exact=True).click()
    page.get_by_role("heading", name="Queue default").wait_for()
    page.get_by_role("button", name="Pause").wait_for()
    page.wait_for_timeout(2_500)
    browser.screenshots("queue")

    page.get_by_role("link", name="Workers", exact=True).click()
    page.locator("#workers-list", has_text="worker-a").wait_for()
    browser.screenshots("workers")

    # The tab remembers what it submitted, with live status.
    page.get_by_role("link", name="Tasks", exact=True).click()
    page.locator("#recent-tasks").get_by_role("link", name=task_id).wait_for()
    assert "SUCCESS" in page.locator("#recent-tasks").inner_text()
    browser.screenshots("tasks")
    page.emulate_media(color_scheme="dark")
    page.get_by_role("link", name="Overview").click()
    page.locator("path.line").first.wait_for()
    browser.screenshots("overview-dark")


def test_cancel_running_task_force_then_graceful(
    start_api: Callable[..., Any], start_worker: Callable[..., Any], browser: Any, client: Client
) -> None:
    start_worker("--worker-id", "worker-c")
    api = start_api()
    page = open_ui(browser, api.url)
    task_id = submit_task(page, "cancellable", "[60]")
    wait_status(page, "RUNNING")
    # The worker page shows it as the worker's current task.
    page.get_by_role("link", name="Workers", exact=True).click()
    page.locator("#workers-list").get_by_role("link", name=task_id).click()
    wait_status(page, "RUNNING")

    page.get_by_label("Force (kill the running attempt)").check()
    page.get_by_role("button", name="Cancel task").click()
    page.locator("#action-message", has_text="Cancel requested").wait_for()
    wait_status(page, "CANCELLED")
    assert client.get_task(task_id).status == TaskStatus.CANCELLED
    page.locator("dd", has_text="user_requested").wait_for()
    assert page.get_by_role("button", name="Cancel task").is_hidden()
    browser.screenshots("task-cancelled")

    # Retry a cancelled task: a new task with the same arguments; then cancel that one gracefully.
    page.get_by_role("button", name="Retry").click()
    page.wait_for_url(lambda url: TASK_URL.search(url) is not None and task_id not in url)
    match = TASK_URL.search(page.url)
    assert match
    retried = match.group(1)
    wait_status(page, "RUNNING")
    page.get_by_role("button", name="Cancel task").click()
    page.locator("#action-message", has_text="stops at its next cancellation check").wait_for()
    wait_status(page, "SUCCESS")
    assert page.get_by_label("result", exact=True).inner_text().strip() == '"saw cancel"'
    assert client.get_task(retried).result == "saw cancel"


def test_replay_and_purge_dead_letters_in_open_mode(
    start_api: Callable[..., Any], start_worker: Callable[..., Any], browser: Any, client: Client
) -> None:
    worker = start_worker()
    first = client.enqueue("fail_with", ["value"])
    second = client.enqueue("fail_with", ["value"])
    wait_until(lambda: client.queue_depth("default").dead == 2, 20)
    worker.terminate()  # so the replayed task stays visibly queued until a worker comes back

    api = start_api(keys=None)  # open mode: no key box at all
    page = open_ui(browser, api.url, key=None)
    assert page.locator("#login").is_hidden()
    page.get_by_role("link", name="Dead letters").first.click()
    rows = page.locator("#dlq-list tbody tr")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    assert "not_retryable" in page.locator("#dlq-list").inner_text()
    browser.screenshots("dead-letters")

    page.get_by_role("button", name=f"Replay {first.id}").click()
    page.locator("#dlq-message", has_text=f"Replayed {first.id}").wait_for()
    page.locator("#dlq-total", has_text="1").wait_for()
    assert rows.count() == 1
    assert client.get_task(first.id).status == TaskStatus.QUEUED

    # Purge asks first; keeping them changes nothing.
    page.get_by_role("button", name="Purge all").click()
    page.get_by_role("dialog").get_by_text("Delete 1 dead letters of queue default").wait_for()
    page.get_by_role("button", name="Keep them").click()
    assert rows.count() == 1
    page.get_by_role("button", name="Purge all").click()
    page.get_by_role("dialog").get_by_role("button", name="Purge").click()
    page.locator("#dlq-message", has_text="Purged 1 dead letters").wait_for()
    page.get_by_text("No dead letters in queue default.").wait_for()
    assert client.queue_depth("default").dead == 0
    assert not client.result_exists(second.id)

    # A worker comes back: the replayed task runs again (and, being bad input, dies again).
    start_worker()
    page.goto(f"{api.url}/#/tasks/{first.id}")
    wait_status(page, "FAILED")
    page.locator("dd", has_text="2 (max retries").wait_for()
    page.get_by_role("heading", name="Error").wait_for()
    assert "bad input" in page.locator("#task-error").inner_text()
    page.get_by_label("traceback", exact=True).wait_for()
    browser.screenshots("task-failed")


def test_redis_down_is_explained_on_every_page(
    start_api: Callable[..., Any], browser: Any, settings: Settings
) -> None:
    down = settings.model_copy(update={"redis_url": SecretStr(f"redis://127.0.0.1:{free_port()}/0")})
    api = start_api(keys=None, server_settings=down)
    page = browser.page
    page.goto(api.url)
    notice = page.locator("#notice")
    notice.filter(has_text="the broker (Redis) is unavailable").wait_for()
    assert "HTTP 503 unavailable" in notice.inner_text()
    browser.screenshots("redis-down")
    # A new page starts with a clean notice and reports the outage again from its own requests.
    page.get_by_role("link", name="Workers", exact=True).click()
    notice.filter(has_text="unavailable").wait_for()


def test_search_tasks_over_the_record(
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    browser: Any,
    client: Client,
    pg_pool: ConnectionPool,
    database_url: str,
) -> None:
    start_worker("--pool", "thread")
    succeeded = [client.enqueue("add", [i, i]).id for i in range(25)]
    failed = [client.enqueue("fail_with", ["value"]).id for _ in range(2)]
    wait_until(lambda: all(client.get_task(i).status.is_terminal for i in succeeded + failed), 30)
    drain(make_recorder(client, pg_pool))
    api = start_api(database_url=database_url)
    page = open_ui(browser, api.url)
    page.get_by_role("link", name="Tasks", exact=True).click()

    # No filter: every recorded task, newest first, 20 a page, searched and paged by the server.
    rows = page.locator("#search-results tbody tr")
    page.locator("#search-range", has_text="Tasks 1 to 20").wait_for()
    assert rows.count() == 20
    assert page.get_by_role("button", name="Previous page").is_disabled()
    page.get_by_role("button", name="Next page").click()
    page.locator("#search-range", has_text="Tasks 21 to 27").wait_for()
    assert rows.count() == 7 and page.get_by_role("button", name="Next page").is_disabled()
    assert "offset=20" in page.url

    # Status and error text: the two dead-lettered tasks, with their error.
    page.get_by_label("FAILED", exact=True).check()
    page.get_by_label("Error contains").fill("bad input")
    page.get_by_role("button", name="Search", exact=True).click()
    page.locator("#search-range", has_text="Tasks 1 to 2").wait_for()
    found = page.locator("#search-results").inner_text()
    assert all(task_id in found for task_id in failed) and "ValueError: bad input" in found
    assert "status=FAILED" in page.url and "error=bad+input" in page.url
    browser.screenshots("task-search")

    # The search is a link: opening it again restores the filters and the results.
    page.reload()
    page.locator("#search-range", has_text="Tasks 1 to 2").wait_for()
    assert page.get_by_label("FAILED", exact=True).is_checked()
    assert page.get_by_label("Error contains").input_value() == "bad input"

    # Name and a time range that excludes everything; then a bad queue name, refused by the API.
    page.get_by_role("button", name="Clear filters").click()
    page.locator("#search-range", has_text="Tasks 1 to 20").wait_for()
    page.get_by_label("Task name is").fill("add")
    page.get_by_label("From").fill("2999-01-01T00:00")
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_text("No recorded task matches these filters.").wait_for()
    page.get_by_label("From").fill("")
    page.get_by_role("button", name="Search", exact=True).click()
    page.locator("#search-range", has_text="Tasks 1 to 20").wait_for()
    assert "fail_with" not in page.locator("#search-results").inner_text()
    page.get_by_label("In queue").fill("bad queue")
    page.get_by_role("button", name="Search", exact=True).click()
    page.locator("#search-message", has_text="(field: queue)").wait_for()
    assert page.get_by_label("In queue").get_attribute("aria-invalid") == "true"


def test_overview_pages_through_many_queues(
    start_api: Callable[..., Any], browser: Any, client: Client
) -> None:
    """With more queues than one page (100), the overview shows a page at a time, pages on with the API's
    cursor and back again, and counts every queue."""
    client.enqueue_many([make_request("add", [i, i], queue=f"q{i:03d}") for i in range(130)])
    api = start_api(keys=None)
    page = open_ui(browser, api.url, key=None)
    rows = page.locator("#overview-queues tbody tr")
    rows.nth(99).wait_for()
    assert rows.count() == 100 and rows.first.locator("td").first.inner_text() == "q000"
    page.locator("#overview-cards", has_text="130").wait_for()
    page.locator("#overview-cards", has_text="Ready (this page)").wait_for()
    pager = page.locator("#overview-queues-pager")
    pager.get_by_role("button", name="Next").click()
    page.locator("#overview-queues tbody tr td", has_text="q129").wait_for()
    assert rows.count() == 30 and rows.first.locator("td").first.inner_text() == "q100"
    assert pager.get_by_role("button", name="Next").is_disabled()
    pager.get_by_role("button", name="Previous").click()
    page.locator("#overview-queues tbody tr td", has_text="q000").wait_for()
    assert rows.count() == 100
