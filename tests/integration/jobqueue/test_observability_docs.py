"""docs/observability.md runs as written: its Python blocks in order, in one namespace, against the test
Redis, with the real OpenTelemetry SDK."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.util._once import Once

from jobqueue import Settings

pytestmark = pytest.mark.timeout(60)

DOC = Path(__file__).resolve().parents[3] / "docs" / "observability.md"


@pytest.fixture
def fresh_tracer_provider() -> Iterator[None]:
    """The doc installs the global TracerProvider; put it back so no other test traces (the reset
    OpenTelemetry's own test utilities do)."""
    yield
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


def test_the_tracing_example_runs(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fresh_tracer_provider: None,
) -> None:
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("JOBQUEUE_KEY_PREFIX", settings.key_prefix)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks
    namespace: dict[str, Any] = {"__name__": "observability_doc"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"docs/observability.md example {number}", "exec"), namespace)  # our own docs
    namespace["app"].close()
    assert "POST /signup -> send emails -> process emails" in capsys.readouterr().out
