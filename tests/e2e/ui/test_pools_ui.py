"""The Pools page and a pool's page in a real headless Chromium against a real API process whose pool
backend is the local one (as under `jobqueue up`), on a real Redis: create through the form, scale, switch
autoscaling, read the events, delete; refusals shown next to the control that caused them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from ui_pages import open_ui

from jobqueue import Client
from jobqueue.broker.worker_pools import PoolStore
from jobqueue.errors import PoolNotFound
from jobqueue.services.pool_fleet import PoolFleet

pytestmark = pytest.mark.timeout(150)

LOCAL_POOLS = {"JOBQUEUE_API_POOLS_BACKEND": "local"}
# A reason a user's code could put in an event: must show as text, never run or become markup.
HOSTILE = '<img src=x onerror="window.__pwned=1"><b>bold</b> \u202e'


def test_create_scale_autoscale_and_delete_a_pool(
    start_api: Callable[..., Any], browser: Any, client: Client
) -> None:
    api = start_api(extra_env=LOCAL_POOLS)
    store = PoolStore(client)
    page = open_ui(browser, api.url, "admin-key")
    page.get_by_role("link", name="Pools", exact=True).click()
    page.get_by_role("heading", name="Pools", exact=True).wait_for()
    page.locator("#pools-backend", has_text="Backend: local").wait_for()
    page.locator("#pools-list", has_text="No pools yet").wait_for()

    # A refused body names the field, next to the form (zero concurrency is a 422).
    page.get_by_label("Pool name").fill("emails")
    page.get_by_label("Queues").fill("emails, receipts")
    page.get_by_label("Concurrency").fill("0")
    page.get_by_role("button", name="Create pool").click()
    page.locator("#pool-form-message", has_text="field: concurrency").wait_for()
    with pytest.raises(PoolNotFound):
        store.get("emails")

    page.get_by_label("Concurrency").fill("3")
    page.get_by_label("Replicas", exact=True).fill("2")
    page.get_by_role("button", name="Create pool").click()
    page.wait_for_url(f"{api.url}/#/pools/emails")
    page.get_by_role("heading", name="emails").wait_for()
    spec = store.get("emails")
    assert (spec.queues, spec.concurrency, spec.replicas) == (("emails", "receipts"), 3, 2)
    page.locator("#pool-facts", has_text="emails, receipts").wait_for()
    page.locator("#pool-events", has_text="Created").wait_for()

    page.get_by_label("Replicas", exact=True).fill("5")
    page.get_by_role("button", name="Scale").click()
    page.locator("#pool-scale-message", has_text="done").wait_for()
    assert store.get("emails").replicas == 5
    page.locator("#pool-events", has_text="scaled to 5 replicas").wait_for()

    # min > max: the 422 names the field beside the autoscaling form, and nothing changes.
    page.get_by_label("Autoscale from queue depth").check()
    page.get_by_label("Min replicas").fill("4")
    page.get_by_label("Max replicas").fill("2")
    page.get_by_role("button", name="Save autoscaling").click()
    page.locator("#pool-auto-message", has_text="min_replicas").wait_for()
    assert not store.get("emails").autoscaling.enabled

    page.get_by_label("Max replicas").fill("8")
    page.get_by_label("Tasks per replica").fill("20")
    page.get_by_role("button", name="Save autoscaling").click()
    page.locator("#pool-auto-message", has_text="done").wait_for()
    auto = store.get("emails").autoscaling
    assert (auto.enabled, auto.min_replicas, auto.max_replicas, auto.target_tasks_per_replica) == (
        True,
        4,
        8,
        20,
    )
    page.locator("#pool-facts", has_text="on: 4\u20138, 20 tasks per replica").wait_for()
    page.locator("#pool-events", has_text="autoscaling on: 4..8").wait_for()

    # An event reason from user code is shown as the text it is.
    store.record_event("emails", "WorkerReplaced", HOSTILE)
    page.locator("#pool-events", has_text="<b>bold</b>").wait_for()
    assert page.locator("#pool-events img, #pool-events b").count() == 0
    assert page.evaluate("window.__pwned") is None
    browser.screenshots("pool-detail")

    # The list shows it, with autoscaling on and the autoscaler's bounds as desired replicas.
    page.get_by_role("link", name="All pools").click()
    page.locator("#pools-list", has_text="auto (4\u20138)").wait_for()
    # A taken name is a 409, shown beside the form.
    page.get_by_label("Pool name").fill("emails")
    page.get_by_label("Queues").fill("emails")
    page.get_by_role("button", name="Create pool").click()
    page.locator("#pool-form-message", has_text="409").wait_for()
    browser.screenshots("pools")

    page.get_by_role("link", name="emails").click()
    page.get_by_role("heading", name="emails").wait_for()
    # Autoscaling off from the switch: holds the current replicas.
    page.get_by_label("Autoscale from queue depth").uncheck()
    page.get_by_role("button", name="Save autoscaling").click()
    page.locator("#pool-facts", has_text="off").wait_for()
    assert not store.get("emails").autoscaling.enabled

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete pool").click()
    store.get("emails")  # dismissed: still there
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete pool").click()
    page.wait_for_url(f"{api.url}/#/pools")
    page.locator("#pools-list", has_text="No pools yet").wait_for()
    wait_until(lambda: not store.all(), timeout=5)


def test_a_read_only_key_sees_pools_and_is_refused_beside_the_control(
    start_api: Callable[..., Any], browser: Any, client: Client
) -> None:
    # The longest name a pool may have (a DNS label): it must wrap on a phone, not widen the page.
    name = "reports-" + "a" * 55
    reader = start_api(extra_env=LOCAL_POOLS)
    admin = start_api(extra_env=LOCAL_POOLS)
    page = open_ui(browser, admin.url, "admin-key")
    page.goto(f"{admin.url}/#/pools")
    page.get_by_label("Pool name").fill(name)
    page.get_by_label("Queues").fill("reports")
    page.get_by_role("button", name="Create pool").click()
    page.wait_for_url(f"{admin.url}/#/pools/{name}")
    page.get_by_role("link", name="All pools").click()
    page.locator("#pools-list", has_text=name).wait_for()
    browser.screenshots("pools-long-name")

    page = open_ui(browser, reader.url, "read-key")
    page.goto(f"{reader.url}/#/pools/{name}")
    page.locator("#pool-events", has_text="Created").wait_for()
    page.get_by_label("Replicas", exact=True).fill("3")
    page.get_by_role("button", name="Scale").click()
    page.locator("#pool-scale-message", has_text="403").wait_for()
    assert PoolStore(client).get(name).replicas == 1
    browser.screenshots("pool-read-only")


def test_an_unknown_pool_and_no_pool_backend_say_so(start_api: Callable[..., Any], browser: Any) -> None:
    local = start_api(extra_env=LOCAL_POOLS)
    page = open_ui(browser, local.url, "admin-key")
    page.goto(f"{local.url}/#/pools/no-such-pool")
    page.locator("#notice", has_text="404").wait_for()

    unset = start_api()  # JOBQUEUE_API_POOLS_BACKEND unset: "none"
    page = open_ui(browser, unset.url, "admin-key")
    page.goto(f"{unset.url}/#/pools")
    page.locator("#pools-backend", has_text="JOBQUEUE_API_POOLS_BACKEND").wait_for()
    assert page.locator("#notice").is_hidden()


def test_ready_replicas_follow_the_real_workers(
    start_api: Callable[..., Any], browser: Any, client: Client, fleet: PoolFleet
) -> None:
    api = start_api(extra_env=LOCAL_POOLS)
    page = open_ui(browser, api.url, "admin-key")
    page.goto(f"{api.url}/#/pools")
    page.get_by_label("Pool name").fill("mail")
    page.get_by_label("Queues").fill("mail")
    page.get_by_label("Replicas", exact=True).fill("2")
    page.get_by_role("button", name="Create pool").click()
    page.wait_for_url(f"{api.url}/#/pools/mail")
    facts = page.locator("#pool-facts")

    def shows(text: str) -> bool:
        fleet.tick()
        return text in facts.inner_text()

    wait_until(lambda: shows("2 / 2"), timeout=60, interval=0.3)
    page.locator("#pool-facts", has_text="pool-mail-").wait_for()
    assert client.enqueue("add", [2, 3], queue="mail").result(timeout=30) == 5
    browser.screenshots("pool-running")

    page.get_by_label("Replicas", exact=True).fill("1")
    page.get_by_role("button", name="Scale").click()
    page.locator("#pool-scale-message", has_text="done").wait_for()
    wait_until(lambda: shows("1 / 1"), timeout=60, interval=0.3)
    page.locator("#pool-events", has_text="scaled to 1 replicas").wait_for()
