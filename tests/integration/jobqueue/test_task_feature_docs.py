"""docs/expiry.md, docs/progress.md, and the new sections of docs/deduplication.md and docs/schedules.md run
as written: each document's Python blocks in order, in one namespace, against the test Redis (through the
real worker code path of jobqueue.testing.run_until_idle)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from jobqueue import Settings

DOCS = Path(__file__).resolve().parents[3] / "docs"
pytestmark = pytest.mark.timeout(90)


def blocks(doc: str, section: str | None = None) -> list[str]:
    text = (DOCS / doc).read_text()
    if section is not None:
        start = text.index(f"## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end != -1 else None]
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def run(doc: str, code: list[str]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": doc.replace(".", "_")}
    for number, block in enumerate(code, 1):
        exec(compile(block, f"docs/{doc} example {number}", "exec"), namespace)  # our own docs
    app = namespace.get("app")
    if app is not None:
        app.close()
    return namespace


@pytest.fixture(autouse=True)
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("JOBQUEUE_KEY_PREFIX", settings.key_prefix)


def test_the_expiry_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    code = blocks("expiry.md")
    assert len(code) == 3
    run("expiry.md", code)
    assert "ended EXPIRED: not started before it expired: never run" in capsys.readouterr().out


def test_the_progress_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    code = blocks("progress.md")
    assert len(code) == 2
    run("progress.md", code)
    assert capsys.readouterr().out.splitlines()[0] == "imported row-9999"


def test_the_duplicate_lookup_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code = blocks("deduplication.md", "Which task was it folded into?")
    assert len(code) == 1
    run("deduplication.md", code)
    assert re.fullmatch(r"[0-9a-f]{64}\n", capsys.readouterr().out)


def test_the_periodic_example_runs() -> None:
    code = blocks("schedules.md", "Schedules declared in code")
    assert len(code) == 1
    namespace = run("schedules.md", code)
    assert namespace["refresh"]("us") == "refreshed us"
