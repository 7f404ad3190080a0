"""Schedules declared in code (``@app.periodic``): checked at decoration, synced idempotently by the
scheduler at start (a real scheduler process firing to a real worker process), and the ones removed from
the code paused and reported, not kept running nor deleted."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until, worker_env
from pydantic import SecretStr

from jobqueue import App, Client, ConfigurationError, Settings
from jobqueue.schedules.model import SOURCE_CODE
from jobqueue.services.scheduler import Scheduler
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(60)


def declare(settings: Settings, *names: str, cron: str = "*/5 * * * *") -> App:
    app = App(settings=settings)
    for name in names:

        def body() -> None: ...

        app.periodic(cron=cron, tz="Europe/Paris", name=name, queue="reports", args=[name])(body)
    return app


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, ApiSettings(keys=SecretStr("read-key:read")))
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def listing(api: TestClient) -> dict[str, dict[str, Any]]:
    r = api.get("/api/v1/schedules", headers={"Authorization": "Bearer read-key"})
    assert r.status_code == 200, r.text
    body = r.json()
    items = body if isinstance(body, list) else body["schedules"]
    return {s["name"]: s for s in items}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "not a cron"}, "cron"),
        ({"cron": ""}, "cron"),
        ({"cron": "*/5 * * * *", "tz": "Mars/Olympus"}, "tz"),
        ({"cron": "*/5 * * * *", "args": ["a\x00b"]}, "args[0]: contains a NUL"),
        ({"cron": "*/5 * * * *", "args": ["\ud800"]}, "args"),
        ({"cron": "*/5 * * * *", "queue": "no spaces"}, "queue"),
        ({"cron": "*/5 * * * *", "name": "bad name!"}, "name"),
    ],
)
def test_an_invalid_declaration_is_a_configuration_error_at_decoration(
    settings: Settings, options: dict[str, Any], message: str
) -> None:
    app = App(settings=settings)
    with pytest.raises(ConfigurationError) as caught:

        @app.periodic(**options)
        def report() -> None: ...

    assert "@app.periodic" in str(caught.value) and f": {message}" in str(caught.value)
    assert app.registry == {} and app.periodic_schedules == {}  # nothing half-declared


def test_a_name_declared_twice_is_refused(settings: Settings) -> None:
    app = declare(settings, "daily")
    with pytest.raises(ConfigurationError):
        app.periodic(cron="0 * * * *", name="daily")(lambda: None)


def test_sync_is_idempotent_and_shows_source_code(
    client: Client, settings: Settings, api: TestClient
) -> None:
    app = declare(settings, "daily", "hourly")
    first = Scheduler(client, code_schedules=app.periodic_schedules)
    first.tick()
    assert first.code_sync is not None and first.code_sync.created == ["daily", "hourly"]
    before = listing(api)
    assert before["daily"]["source"] == SOURCE_CODE and before["daily"]["orphaned"] is False
    assert (before["daily"]["timezone"], before["daily"]["queue"], before["daily"]["args"]) == (
        "Europe/Paris",
        "reports",
        ["daily"],
    )
    # A second scheduler (a restart) changes nothing: same definitions, same next fire times.
    second = Scheduler(client, code_schedules=declare(settings, "daily", "hourly").periodic_schedules)
    second.tick()
    assert second.code_sync is not None and second.code_sync.unchanged == ["daily", "hourly"]
    assert listing(api) == before
    # A changed cron is updated in place.
    changed = declare(settings, "daily", "hourly", cron="0 3 * * *")
    third = Scheduler(client, code_schedules=changed.periodic_schedules)
    third.tick()
    assert third.code_sync is not None and third.code_sync.updated == ["daily", "hourly"]
    assert listing(api)["daily"]["cron"] == "0 3 * * *"


def test_a_schedule_removed_from_the_code_is_paused_and_reported(
    client: Client, settings: Settings, api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = App(settings=settings)
    app.schedules.register("by-api", cron="0 * * * *", task="add")  # not the code's: left alone
    Scheduler(client, code_schedules=declare(settings, "daily", "weekly").periodic_schedules).tick()
    with caplog.at_level(logging.WARNING, logger="jobqueue.schedules.code"):
        later = Scheduler(client, code_schedules=declare(settings, "daily").periodic_schedules)
        later.tick()
    assert later.code_sync is not None and later.code_sync.orphaned == ["weekly"]
    assert "'weekly' was declared with @app.periodic but no longer is" in caplog.text
    shown = listing(api)
    assert (shown["weekly"]["source"], shown["weekly"]["orphaned"], shown["weekly"]["paused"]) == (
        SOURCE_CODE,
        True,
        True,
    )
    assert (shown["daily"]["orphaned"], shown["daily"]["paused"]) == (False, False)
    assert (shown["by-api"]["source"], shown["by-api"]["paused"]) == ("api", False)
    # Declared again: it runs again.
    Scheduler(client, code_schedules=declare(settings, "daily", "weekly").periodic_schedules).tick()
    assert (listing(api)["weekly"]["orphaned"], listing(api)["weekly"]["paused"]) == (False, False)


def test_a_schedule_the_server_refuses_is_logged_and_the_others_sync(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    strict = settings.model_copy(update={"min_schedule_interval_seconds": 60.0})
    client = Client(strict)
    app = declare(strict, "daily")
    app.periodic(cron="* * * * * *", name="too-often")(lambda: None)
    scheduler = Scheduler(client, code_schedules=app.periodic_schedules)
    with caplog.at_level(logging.ERROR, logger="jobqueue.schedules.code"):
        scheduler.tick()
    assert scheduler.code_sync is not None
    assert scheduler.code_sync.created == ["daily"] and list(scheduler.code_sync.failed) == ["too-often"]
    assert "code schedule 'too-often' cannot be registered" in caplog.text
    client.close()


def test_a_scheduler_process_fires_a_code_schedule_to_a_worker(
    client: Client, settings: Settings, start_worker: Callable[..., Any]
) -> None:
    start_worker("--pool", "thread", "--concurrency", "1")
    env = {**os.environ, **worker_env(settings)}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "jobqueue", "scheduler", "--interval", "0.2", "--app", "jq_test_app:app"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        fired = f"{settings.key_prefix}:test:periodic"
        wait_until(lambda: client.redis.llen(fired) >= 2, timeout=30)
        assert set(client.redis.lrange(fired, 0, -1)) == {"tick"}
        [info] = [i for i in App(settings=settings).schedules.list() if i.schedule.name == "every_second"]
        assert (info.schedule.source, info.schedule.timezone) == (SOURCE_CODE, "Europe/Paris")
    finally:
        scheduler.terminate()
        assert scheduler.wait(10) == 0
