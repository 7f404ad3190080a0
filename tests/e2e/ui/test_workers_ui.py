"""The Workers page and the overview's workers with a fleet larger than a page, in headless Chromium
against a real API on a real Redis: the pages follow the API's cursor, and the counts come from the
whole fleet, not from the page on screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from ui_pages import open_ui

from jobqueue import Client
from jobqueue.broker.worker_registry import publish_worker_record

pytestmark = pytest.mark.timeout(120)


def test_workers_page_through_a_fleet_larger_than_a_page(
    start_api: Callable[..., Any], browser: Any, client: Client
) -> None:
    info = {"status": "IDLE", "queues": "default", "concurrency": 2, "host": "node-1", "pid": 7}
    for n in range(230):
        publish_worker_record(client.redis, client.global_keys, f"pod-{n:03d}", info, ttl_seconds=300)
    api = start_api()
    page = open_ui(browser, api.url)
    page.locator("#overview-workers", has_text="The first 50 of 230.").wait_for()
    page.locator("#overview-cards", has_text="Workers live").wait_for()
    assert "230" in page.locator("#overview-cards").inner_text()

    page.get_by_role("link", name="Workers", exact=True).click()
    rows = page.locator("#workers-list tbody tr")
    page.locator("#workers-list", has_text="pod-199").wait_for()
    assert rows.count() == 200 and "pod-200" not in page.locator("#workers-list").inner_text()
    pager = page.locator("#workers-pager")
    pager.get_by_role("button", name="Next").click()
    page.locator("#workers-list", has_text="pod-229").wait_for()
    assert rows.count() == 30 and pager.get_by_role("button", name="Next").is_disabled()
    browser.screenshots("workers-paged")
    pager.get_by_role("button", name="Previous").click()
    page.locator("#workers-list", has_text="pod-000").wait_for()
