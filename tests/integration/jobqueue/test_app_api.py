"""The public Python API of issue 2: App, @app.task, handles, AsyncClient, CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from jobqueue import App, AsyncClient, ConfigurationError, Priority, Settings, TaskStatus

pytestmark = pytest.mark.timeout(60)


def test_decorated_task_enqueue_variants(settings: Settings, start_worker: Callable[..., Any]) -> None:
    app = App(settings=settings)

    @app.task(queue="default", priority=Priority.HIGH, max_retries=3, retry_backoff="exponential",
              timeout=30, soft_timeout=24, retry_on=(IOError,))  # fmt: skip
    def add(x: int, y: int) -> int:
        return x + y

    assert add(1, 2) == 3  # still a plain function when called directly
    start_worker()
    h = add.enqueue(1, 2)
    assert h.result(timeout=20) == 3
    record = app.client.get_task(h.id)
    assert (record.priority, record.max_retries, record.timeout, record.soft_timeout) == (
        Priority.HIGH, 3, 30.0, 24.0,
    )  # fmt: skip
    delayed = add.enqueue_in(30, 1, 2)
    assert app.client.get_task(delayed.id).status == TaskStatus.DELAYED
    at = add.enqueue_at(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), 1, 2)
    eta = app.client.get_task(at.id).eta
    assert eta is not None and 3500 < eta - dt.datetime.now(dt.UTC).timestamp() < 3700
    assert app.client.cancel(delayed.id) == "cancelled"
    app.close()


def test_duplicate_task_names_are_rejected(settings: Settings) -> None:
    app = App(settings=settings)

    @app.task(name="x")
    def one() -> None: ...

    with pytest.raises(ConfigurationError):

        @app.task(name="x")
        def two() -> None: ...


def test_async_client_same_surface(settings: Settings, start_worker: Callable[..., Any]) -> None:
    start_worker()

    async def scenario() -> None:
        client = AsyncClient(settings)
        h = await client.enqueue("add", [20, 22])
        assert await h.result(timeout=20) == 42
        assert (await client.get_task(h.id)).status == TaskStatus.SUCCESS
        later = await client.enqueue("add", [1, 1], countdown=60)
        assert await client.cancel(later.id) == "cancelled"
        depth = await client.queue_depth("default")
        assert depth.delayed == 0
        many = await client.enqueue_many([])
        assert many == []
        await client.close()

    asyncio.run(scenario())


def test_cli_enqueue_and_status(settings: Settings, start_worker: Callable[..., Any]) -> None:
    start_worker()
    env = {
        "JOBQUEUE_REDIS_URL": settings.redis_url.get_secret_value(),
        "JOBQUEUE_KEY_PREFIX": settings.key_prefix,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-m", "jobqueue", "enqueue", "add", "--args", "[4, 5]", "--wait", "20"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    task_id, result = out.stdout.split()
    assert result == "9"
    status = subprocess.run(
        [sys.executable, "-m", "jobqueue", "status", task_id],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert '"status": "SUCCESS"' in status.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "jobqueue", "enqueue", "add", "--priority", "urgent"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "priority" in bad.stderr
