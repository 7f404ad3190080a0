"""The Python examples in docs/flow-control.md, docs/schedules.md and docs/configuration.md run as written."""

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
def test_doc_examples_run(doc: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("JOBQUEUE_KEY_PREFIX", settings.key_prefix)
    blocks = examples(doc)
    assert blocks
    for block in blocks:
        exec(compile(block, f"{doc} example", "exec"), {})  # our own docs
