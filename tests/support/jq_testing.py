"""Helpers shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from jobqueue import Client, Settings

SUPPORT = Path(__file__).parent


def burst_worker(settings: Settings, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run ``jobqueue worker --burst`` on jq_test_app to its exit, as a real process on ``settings``
    (any Redis URL form: standalone, Sentinel, Cluster)."""
    return subprocess.run(
        [sys.executable, "-m", "jobqueue", "worker", "--app", "jq_test_app:app", "--burst", *args],
        env={**os.environ, **worker_env(settings)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def worker_env(settings: Settings) -> dict[str, str]:
    """Environment for a worker subprocess that uses ``settings`` and can import jq_test_app."""
    env = {
        "JOBQUEUE_REDIS_URL": settings.redis_url.get_secret_value(),
        "JOBQUEUE_KEY_PREFIX": settings.key_prefix,
        "JOBQUEUE_LEASE_SECONDS": str(settings.lease_seconds),
        "JOBQUEUE_HEARTBEAT_SECONDS": str(settings.heartbeat_seconds),
        "JOBQUEUE_DEFAULT_MAX_RETRIES": str(settings.default_max_retries),
        "JOBQUEUE_DEFAULT_TIMEOUT": str(settings.default_timeout),
        "JOBQUEUE_BACKOFF_SCALE": str(settings.backoff_scale),
        "JOBQUEUE_MAX_RESULT_BYTES": str(settings.max_result_bytes),
        "JOBQUEUE_LOG_TASK_PAYLOAD_CHARS": str(settings.log_task_payload_chars),
        "PYTHONPATH": os.pathsep.join([str(SUPPORT), os.environ.get("PYTHONPATH", "")]),
    }
    if settings.log_task_success_level != "INFO":
        env["JOBQUEUE_LOG_TASK_SUCCESS_LEVEL"] = settings.log_task_success_level
    if settings.health_dir:
        env["JOBQUEUE_HEALTH_DIR"] = settings.health_dir
    if settings.redis_wait_replicas:
        env["JOBQUEUE_REDIS_WAIT_REPLICAS"] = str(settings.redis_wait_replicas)
        env["JOBQUEUE_REDIS_WAIT_TIMEOUT_SECONDS"] = str(settings.redis_wait_timeout_seconds)
    if settings.redis_max_connections is not None:
        env["JOBQUEUE_REDIS_MAX_CONNECTIONS"] = str(settings.redis_max_connections)
    return env


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll a test condition (tests may poll; the product may not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def runs(client: Client) -> list[tuple[str, str, str]]:
    """Executions recorded by jq_test_app tasks: (task id, 'start'|'done', pid)."""
    raw = client.redis.lrange(f"{client.settings.key_prefix}:test:runs", 0, -1)
    return [tuple(r.split("|")) for r in raw]  # type: ignore[misc]
