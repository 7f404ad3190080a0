"""Pools at a glance in a real headless Chromium against a real API process (local pool backend) and the
real worker processes of `jobqueue up`'s fleet: the replicas sparkline follows a scale, and the Overview
shows the pools under the queues."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until
from ui_pages import open_ui

from jobqueue import Client
from jobqueue.broker.worker_pools import PoolStore
from jobqueue.pools import PoolSpec
from jobqueue.services.pool_fleet import PoolFleet

pytestmark = pytest.mark.timeout(150)

LOCAL_POOLS = {"JOBQUEUE_API_POOLS_BACKEND": "local"}


def test_sparkline_follows_a_scale_and_the_overview_lists_pools(
    start_api: Callable[..., Any], browser: Any, client: Client, fleet: PoolFleet
) -> None:
    store = PoolStore(client)
    store.create(PoolSpec(name="mail", queues=("mail",), concurrency=2, replicas=2))
    api = start_api(extra_env=LOCAL_POOLS)
    page = open_ui(browser, api.url)

    # The Overview: the pool under the queues, with its sparkline (sampled when the API serves the pool).
    pools = page.locator("#overview-pools")
    pools.get_by_role("link", name="mail").wait_for()
    facts = page.locator("#overview-pools tbody tr", has_text="mail")
    wait_until(
        lambda: (fleet.tick(), "2" in facts.locator("td").nth(3).inner_text())[1], timeout=60, interval=0.3
    )
    assert pools.locator("svg.sparkline path").count() == 1
    assert client.enqueue("add", [2, 3], queue="mail").result(timeout=30) == 5
    browser.screenshots("overview-pools")

    pools.get_by_role("link", name="mail").click()
    page.get_by_role("heading", name="Pool mail").wait_for()
    spark = page.locator("#pool-facts svg.sparkline")
    spark.wait_for()
    page.get_by_label("Replicas", exact=True).fill("1")
    page.get_by_role("button", name="Scale").click()
    page.locator("#pool-scale-message", has_text="done").wait_for()
    wait_until(lambda: (fleet.tick(), "1 / 1" in page.locator("#pool-facts").inner_text())[1], 60, 0.3)
    # Every change was sampled as it was served: ready 0 -> 2 workers, then back to 1.
    wait_until(lambda: "to 1 over" in (spark.get_attribute("aria-label") or ""), 10)
    label = spark.get_attribute("aria-label") or ""
    assert label.startswith("Replicas of mail: ") and label.count(" to ") == 1, label
    assert page.locator("#pool-conditions").is_hidden()  # the local backend has no conditions
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header would otherwise sit mid-picture
    browser.screenshots("pool-sparkline")

    page.get_by_role("link", name="All pools").click()
    page.locator("#pools-list svg.sparkline").wait_for()
    browser.screenshots("pools-sparkline")


def test_overview_without_a_pool_backend_says_so(start_api: Callable[..., Any], browser: Any) -> None:
    api = start_api()
    page = open_ui(browser, api.url)
    page.locator("#overview-pools", has_text="JOBQUEUE_API_POOLS_BACKEND").wait_for()
    assert page.locator("#notice").is_hidden()
