"""Helpers shared by the tests."""

from __future__ import annotations

import time
from collections.abc import Callable

from jobqueue import Client


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
