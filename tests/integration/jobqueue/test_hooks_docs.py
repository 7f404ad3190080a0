"""docs/hooks.md runs as written: its blocks in order, in one namespace, against the test Redis and a real
PostgreSQL database. ``sentry_sdk`` is not a dependency, so a recorder with the same calls stands in."""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from jobqueue import Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "hooks.md"


class RecordingScope:
    def __init__(self, calls: list[tuple[str, Any]]) -> None:
        self.calls = calls

    def set_tag(self, key: str, value: str) -> None:
        self.calls.append(("tag", (key, value)))

    def set_context(self, key: str, value: dict[str, Any]) -> None:
        self.calls.append(("context", (key, value)))


def fake_sentry(calls: list[tuple[str, Any]]) -> types.ModuleType:
    """The sentry_sdk calls docs/hooks.md makes, recorded (same names and signatures)."""
    module = types.ModuleType("sentry_sdk")

    @contextmanager
    def new_scope() -> Iterator[RecordingScope]:
        yield RecordingScope(calls)

    module.init = lambda dsn=None, **options: calls.append(("init", dsn))  # type: ignore[attr-defined]
    module.new_scope = new_scope  # type: ignore[attr-defined]
    module.capture_exception = lambda exc: calls.append(("exception", exc))  # type: ignore[attr-defined]
    module.capture_message = lambda message, level=None: calls.append(("message", (message, level)))  # type: ignore[attr-defined]
    module.flush = lambda timeout=None: calls.append(("flush", timeout))  # type: ignore[attr-defined]
    return module


def test_the_sentry_and_database_pool_examples_run(
    settings: Settings, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, Any]] = []
    monkeypatch.setitem(sys.modules, "sentry_sdk", fake_sentry(calls))
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("JOBQUEUE_KEY_PREFIX", settings.key_prefix)
    monkeypatch.setenv("APP_DATABASE_URL", database_url)
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 3
    namespace: dict[str, Any] = {"__name__": "hooks_doc"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"docs/hooks.md example {number}", "exec"), namespace)  # our own docs

    kinds = [kind for kind, _ in calls]
    assert kinds[0] == "init" and kinds[-1] == "flush"  # one worker process: started, then stopped
    exceptions = [value for kind, value in calls if kind == "exception"]
    assert [str(exc) for exc in exceptions] == ["card declined for 1999 cents"]
    assert isinstance(exceptions[0], ValueError)  # the task's own exception object
    assert ("tag", ("jobqueue.task", "charge")) in calls
    declined = namespace["declined"].id
    assert (
        "message",
        (f"task charge {declined} dead-lettered: ValueError: card declined for 1999 cents", "error"),
    ) in calls
