"""Smoke test of ``python -m bench.io_bound`` on jobqueue alone (the peers' rows run the same code with
their own worker commands, in venvs the harness tests build): a tiny run of both kinds of wait, checked
exactly-once, its table written between the docs markers; and the delay server really answers after
50 ms over a reused keep-alive connection."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from bench import io_bound
from bench.io_wait import DELAY_SECONDS, _idle, close_connections, http_get

pytestmark = pytest.mark.timeout(60)


def test_a_tiny_run_of_both_waits_writes_its_table_between_the_markers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "benchmarks.md"
    start, end = io_bound.DOCS_MARKERS
    docs.write_text(f"# Benchmarks\n\n{start}\nold table\n{end}\n\nafter\n")
    args = ["--systems", "jobqueue", "--tasks", "300", "--rounds", "1"]
    assert io_bound.main([*args, "--out", str(tmp_path / "out"), "--docs", str(docs)]) == 0
    text = docs.read_text()
    assert "old table" not in text and text.endswith("\n\nafter\n")
    assert "`jobqueue worker --pool async --concurrency 1000`" in text
    rows = [line for line in text.splitlines() if line.startswith(("| asyncio.sleep", "| an HTTP GET"))]
    assert len(rows) == 2 and all("FAILED" not in row and "n/a" not in row.split("|")[2] for row in rows)
    assert "round 1 http jobqueue:" in capsys.readouterr().out


def test_the_delay_server_answers_after_the_delay_on_a_kept_alive_connection() -> None:
    async def two_gets(port: int) -> list[float]:
        took = []
        for _ in range(2):
            began = time.monotonic()
            assert await http_get(port) == b"ok"
            took.append(time.monotonic() - began)
        (connections,) = [c for c in _idle.values() if c]
        assert len(connections) == 1  # the second GET reused the first one's connection
        await close_connections()
        return took

    with io_bound.delay_server() as port:
        took = asyncio.run(two_gets(port))
    assert all(DELAY_SECONDS <= t < DELAY_SECONDS + 2 for t in took)
