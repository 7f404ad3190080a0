"""Steps every web UI test takes in headless Chromium (tests/e2e/ui): open the UI signed in, wait for a
task's status badge."""

from __future__ import annotations

from typing import Any


def open_ui(browser: Any, url: str, key: str | None = "admin-key") -> Any:
    """The UI at ``url`` on the Overview, signed in with ``key`` (None: an API in open mode, no key box)."""
    page = browser.page
    page.goto(url)
    if key:
        page.locator("#login").wait_for(state="visible")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    return page


def wait_status(page: Any, status: str, timeout: float = 20_000) -> None:
    """Until the task page's status badge reads ``status``."""
    page.locator("#task-status .badge", has_text=status).wait_for(timeout=timeout)
