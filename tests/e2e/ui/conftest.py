"""Fixtures for the web UI tests: a real `jobqueue api` server process and Debian's headless Chromium
driven by Playwright (never `playwright install`: the system browser is the one under test).

Without Chromium or the playwright package the tests skip with a loud reason, except under CI=true,
where a missing browser must fail the run instead of silently testing nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jq_testing import worker_env

from jobqueue import Settings
from jobqueue.broker.client import Client
from jobqueue.embedded.redis_server import free_port
from jobqueue.services.pool_fleet import PoolFleet

CHROMIUM = os.environ.get("JOBQUEUE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = (
    Path(os.environ.get("JOBQUEUE_TEST_ARTIFACTS", Path(__file__).parents[3] / "test-artifacts")) / "ui"
)
VIEWPORTS = {"desktop": {"width": 1366, "height": 768}, "phone": {"width": 390, "height": 844}}
KEYS = "admin-key:admin,read-key:read"
# Controls a screen reader could not name, and ids used twice (labels and aria references break).
UNNAMED_JS = """() => {
  const unnamed = [...document.querySelectorAll('input, select, textarea, button, a[href]')]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
    .map((e) => e.outerHTML.slice(0, 120));
  const ids = [...document.querySelectorAll('[id]')].map((e) => e.id);
  const dupes = ids.filter((id, i) => ids.indexOf(id) !== i);
  return unnamed.concat(dupes.map((id) => `duplicate id ${id}`));
}"""
# Elements wider than the viewport or than their own box, innermost first (diagnostics only).
WIDEST_JS = """() => [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > innerWidth + 1 || e.scrollWidth > e.clientWidth + 1)
  .reverse()
  .slice(0, 6)
  .map((e) => `${e.tagName.toLowerCase()}.${e.className}: ${Math.round(e.getBoundingClientRect().right)}`
              + ` wide, scrollWidth ${e.scrollWidth}`)"""


def _unavailable(reason: str) -> None:
    message = f"WEB UI TESTS NOT RUN: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: a missing browser is a failure)", pytrace=False)
    pytest.skip(message)


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main thread
# while it is open, which would break later tests that call asyncio.run().
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional dev dependency
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[dev]')")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium, or scripts/ensure-system-deps.sh)")
    with sync_playwright() as driver:
        yield driver


class ApiServer:
    """A real `python -m jobqueue api` process on a free loopback port."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        keys: str | None,
        database_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "JOBQUEUE_REDIS_URL": settings.redis_url.get_secret_value(),
            "JOBQUEUE_KEY_PREFIX": settings.key_prefix,
            "JOBQUEUE_API_KEYS": keys or "",
            "JOBQUEUE_API_OPEN_MODE": "false" if keys else "true",
        }
        env.pop("JOBQUEUE_DATABASE_URL", None)
        if database_url:
            env["JOBQUEUE_DATABASE_URL"] = database_url
        env.update(extra_env or {})
        self._log = log_path.open("ab")
        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jobqueue", "api", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"API exited early:\n{self.log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise AssertionError("API did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


@pytest.fixture
def start_api(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    servers: list[ApiServer] = []

    def start(
        keys: str | None = KEYS,
        server_settings: Settings | None = None,
        database_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> ApiServer:
        log_path = tmp_path / f"api{len(servers)}.log"
        server = ApiServer(server_settings or settings, log_path, keys, database_url, extra_env)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


class Browser:
    """One fresh Chromium profile; records uncaught page errors so a test fails on a JS exception."""

    def __init__(self, driver: Any, profile: Path) -> None:
        self.context = driver.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORTS["desktop"],
        )
        self.context.set_default_timeout(15_000)
        self.page = self.context.pages[0] if self.context.pages else self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def screenshots(self, name: str) -> None:
        """Save the current page at laptop and phone size; fail if it scrolls sideways at either size or
        has a control without an accessible name."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        problems = self.page.evaluate(UNNAMED_JS)
        assert not problems, f"{name}: unnamed controls or duplicate ids: {problems}"
        for label, size in VIEWPORTS.items():
            self.page.set_viewport_size(size)
            self.page.wait_for_timeout(250)  # let layout settle after the resize
            # Saved before the check, so a failure leaves the picture that explains it.
            self.page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
            overflow = self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (
                f"{name} at {label} size is {overflow}px wider than the screen: {self._widest()}"
            )
        self.page.set_viewport_size(VIEWPORTS["desktop"])

    def _widest(self) -> str:
        """What sticks out past the right edge, or overflows its box (for the failure message)."""
        return str(self.page.evaluate(WIDEST_JS))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def browser(playwright_driver: Any, tmp_path: Path) -> Iterator[Browser]:
    b = Browser(playwright_driver, tmp_path / "chromium-profile")
    yield b
    b.close()
    assert not b.errors, f"uncaught JavaScript errors: {b.errors}"


@pytest.fixture
def fleet(client: Client, settings: Settings, tmp_path: Path) -> Iterator[PoolFleet]:
    """What `jobqueue up` runs beside the API: the pools' real worker processes (ticked by the test)."""
    fleet = PoolFleet(
        client,
        app_spec="jq_test_app:app",
        log_dir=tmp_path,
        env=worker_env(settings),
        heartbeat_stale_seconds=10,
    )
    try:
        yield fleet
    finally:
        fleet.stop()
