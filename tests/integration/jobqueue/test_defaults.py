"""The product's defaults for a task that sets no retry policy and no timeout: up to 3 retries with
exponential backoff, and a 300 s hard limit; both settings (JOBQUEUE_DEFAULT_MAX_RETRIES,
JOBQUEUE_DEFAULT_TIMEOUT, 0 = none), overridden by the queue's retry default and by the task's own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from jq_testing import worker_env

from jobqueue import App, Client, Settings, TaskStatus
from jobqueue.testing import run_until_idle


def make_app(settings: Settings, **overrides: object) -> App:
    app = App(settings=Settings(redis_url=settings.redis_url, key_prefix=settings.key_prefix, **overrides))

    @app.task
    def always_fails() -> None:
        raise OSError("still broken")

    @app.task(max_retries=1)
    def fails_with_its_own_limit() -> None:
        raise OSError("still broken")

    return app


@pytest.fixture
def apps(settings: Settings) -> Iterator[list[App]]:
    made: list[App] = []
    yield made
    for app in made:
        app.close()


def test_a_failing_task_with_no_policy_is_retried_3_times_with_exponential_backoff(
    settings: Settings, apps: list[App]
) -> None:
    app = make_app(settings)  # the product defaults: nothing overridden
    apps.append(app)
    assert (app.settings.default_max_retries, app.settings.backoff_scale) == (3, 1.0)
    handle = app.registry["always_fails"].enqueue()
    summary = run_until_idle(app, timeout=30)
    record = app.client.get_task(handle.id)
    assert record.status == TaskStatus.FAILED
    assert (summary.retried, summary.failed_ids) == (3, (handle.id,))
    backoffs = [entry["backoff_seconds"] for entry in record.retry_history]
    # 1 s, 2 s, 4 s, each jittered into [50 %, 100 %]; the last failure is not retried.
    assert backoffs[-1] is None
    for n, seconds in enumerate(backoffs[:-1]):
        assert 0.5 * 2**n <= seconds <= 2**n, backoffs


@pytest.mark.parametrize(("default", "retries"), [(0, 0), (1, 1), (5, 5)])
def test_the_default_is_a_setting(settings: Settings, apps: list[App], default: int, retries: int) -> None:
    app = make_app(settings, default_max_retries=default, backoff_scale=0.0)
    apps.append(app)
    handle = app.registry["always_fails"].enqueue()
    summary = run_until_idle(app, timeout=20)
    assert summary.retried == retries
    assert app.client.get_task(handle.id).status == TaskStatus.FAILED


def test_the_queue_default_and_the_task_s_own_limit_override_it(settings: Settings, apps: list[App]) -> None:
    app = make_app(settings, backoff_scale=0.0)
    apps.append(app)
    own = app.registry["fails_with_its_own_limit"].enqueue()
    assert run_until_idle(app, timeout=20).retried == 1
    assert app.client.get_task(own.id).retries == 1
    app.queues.set_retry_defaults("default", max_retries=2)
    app.registry["always_fails"].enqueue()
    assert run_until_idle(app, timeout=20).retried == 2


def burst(settings: Settings, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobqueue", "worker", "--app", "jq_test_app:app", "--burst", "--grace", "5"],
        env={**os.environ, **worker_env(settings), **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_a_task_with_no_timeout_is_killed_at_the_default(settings: Settings, client: Client) -> None:
    # `record` sets no timeout; the process pool kills it at a 1 s default instead of letting it sleep 30 s.
    handle = client.enqueue("record", [], {"sleep": 30.0})
    done = burst(settings, {"JOBQUEUE_DEFAULT_TIMEOUT": "1"})
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    assert "1 timeout" in done.stdout
    assert client.get_task(handle.id).status == TaskStatus.TIMEOUT


def test_a_default_timeout_of_zero_means_no_limit(settings: Settings, client: Client) -> None:
    handle = client.enqueue("record", [], {"sleep": 1.5})
    done = burst(settings, {"JOBQUEUE_DEFAULT_TIMEOUT": "0.5"})
    assert done.returncode == 1  # 0.5 s kills it ...
    handle = client.enqueue("record", [], {"sleep": 1.5})
    done = burst(settings, {"JOBQUEUE_DEFAULT_TIMEOUT": "0"})
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]  # ... 0 lets it finish
    assert client.get_task(handle.id).status == TaskStatus.SUCCESS
