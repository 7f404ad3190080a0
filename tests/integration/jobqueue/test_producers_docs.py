"""docs/producers.md runs as written: its blocks in order, in one namespace, against the test Redis and a
real worker process (jq_test_app has tasks of the same names)."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobqueue import Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "producers.md"


@pytest.mark.timeout(120)
def test_the_producer_examples_run_and_print_what_they_say(
    settings: Settings, start_worker: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("JOBQUEUE_KEY_PREFIX", settings.key_prefix)
    start_worker()
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 4
    namespace: dict[str, Any] = {"__name__": "producers_doc"}
    for block in blocks:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(block, str(DOC), "exec"), namespace)
        # Each print's comment is what it prints.
        expected = re.findall(r"print\(.*\)\s+# (.*)$", block, flags=re.MULTILINE)
        assert printed.getvalue().splitlines() == expected
    namespace["app"].close()
