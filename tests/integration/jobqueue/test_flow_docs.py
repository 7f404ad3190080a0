"""The Python examples in docs/flow-control.md, docs/schedules.md and docs/configuration.md run as written
(against the test Redis, and a migrated test database for the schedule run history)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobqueue import Settings

pytestmark = pytest.mark.timeout(30)
DOCS = Path(__file__).resolve().parents[3] / "docs"


def examples(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("doc", ["flow-control.md", "schedules.md", "configuration.md"])
def test_doc_examples_run(
    doc: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("JOBQUEUE_KEY_PREFIX", settings.key_prefix)
    if doc == "schedules.md":  # its run-history example reads the PostgreSQL record
        monkeypatch.setenv("JOBQUEUE_DATABASE_URL", request.getfixturevalue("database_url"))
    blocks = examples(doc)
    assert blocks
    for block in blocks:
        exec(compile(block, f"{doc} example", "exec"), {})  # our own docs
