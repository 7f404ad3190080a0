"""Smoke test of the benchmark harness (bench/): tiny runs of every code path against a dedicated Redis, so
`make test` keeps `make bench` working. The peers' smoke tests need their venvs (bench/.venv-peers,
bench/.venv-taskiq): CI builds them; elsewhere they are skipped loudly when missing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from bench import cli, headlines, summary
from bench.adapters import ADAPTERS
from bench.peers_env import ensure_venv, is_installed, main_bin_dir
from bench.report import headline_medians, markdown, replace_results, table
from bench.runner import Runner, Sample
from bench.runs import check

from jobqueue.embedded.redis_server import RedisServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def bench_redis(tmp_path: Path) -> Iterator[RedisServer]:
    # The harness FLUSHes its database between systems: give it its own server, never the shared one.
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_jobqueue_cycle_runs_every_task_exactly_once(bench_redis: RedisServer, tmp_path: Path) -> None:
    runner = Runner(bench_redis.url, tmp_path, {"main": main_bin_dir()}, tasks=50)
    adapter = ADAPTERS["jobqueue"]
    enqueue = runner.enqueue(adapter, 1, "one")
    processed = runner.process(adapter, 1, "default")
    runner.flush()
    batch = runner.enqueue(adapter, 1, "batch")
    tuned = runner.process(adapter, 1, "tuned")
    for sample in (enqueue, batch):
        assert sample.value is not None and sample.value > 0
    # One script call per task one by one (plus the first call of each script meeting NOSCRIPT once); a
    # batch of plain tasks is one enqueue_many call per up to 500 tasks.
    assert enqueue.detail["script_calls"] == pytest.approx(1.0, abs=0.05)
    assert batch.detail["script_calls"] <= 0.05
    for sample in (processed, tuned):
        assert sample.ok, sample.detail
        assert (sample.detail["duplicates"], sample.detail["lost"]) == (0, 0)
        assert sample.value is not None and sample.value > 0
        assert sample.detail["commands"] > 0 and sample.detail["cpu_us"] >= 0
    rows = table([enqueue, processed, batch, tuned], ["jobqueue"])
    assert rows[1][0] == "jobqueue" and "FAILED" not in " ".join(rows[1])
    doc = replace_results("# Benchmarks\n\nintro\n", markdown(rows))
    assert replace_results(doc, "new").count("bench:results:start") == 1


def test_losses_and_duplicates_fail_the_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.write_text("0 1.0\n1 1.5\n1 1.6\n")
    result = check(runs, range(3))
    assert (result.unique, result.duplicates, result.lost, result.ok) == (2, 1, 1, False)
    runs.write_text("0 1.0\n1 1.5\n2 1.6\n2 1.7\n")
    result = check(runs, range(3))
    assert (result.duplicates, result.lost, result.ok) == (1, 0, False)  # run twice = failed too


def peer_bins(venv: str) -> dict[str, Path]:
    """bin/ dirs for a runner of a peer in ``venv``; built here under CI (where nothing may skip), else a
    loud skip when missing."""
    if not is_installed(venv):
        if os.environ.get("CI") != "true":
            pytest.skip(f"PEER VENV {venv!r} NOT INSTALLED: run `make bench` once (CI builds it)")
    return {"main": main_bin_dir(), venv: ensure_venv(venv)}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("peer", ["rq", "dramatiq", "huey", "arq", "celery", "taskiq"])
def test_peer_cycle(peer: str, bench_redis: RedisServer, tmp_path: Path) -> None:
    adapter = ADAPTERS[peer]
    runner = Runner(bench_redis.url, tmp_path, peer_bins(adapter.venv), tasks=20)
    assert runner.enqueue(adapter, 1, "one").value
    sample = runner.process(adapter, 1, "tuned")
    assert sample.ok, json.dumps(sample.detail)[:2000]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("peer", ["arq", "taskiq"])
def test_async_peer_latency_run(peer: str, bench_redis: RedisServer, tmp_path: Path) -> None:
    """asyncio-only peers enqueue through one event loop (bench.enqueue's async_producer path)."""
    adapter = replace(ADAPTERS[peer], warmup_seconds=1.5)
    runner = Runner(bench_redis.url, tmp_path, peer_bins(adapter.venv), tasks=10)
    sample = runner.latency(adapter, 1, rate=40, seconds=0.5)
    assert sample.ok, json.dumps(sample.detail)[:2000]
    assert sample.detail["p50_ms"] is not None and sample.detail["p99_ms"] >= sample.detail["p50_ms"]


def test_cli_runs_and_writes_the_docs_section(tmp_path: Path) -> None:
    """`python -m bench` end to end for jobqueue alone, tiny: the table, latency and the docs markers."""
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nkept\n")
    args = ["--systems", "jobqueue", "--tasks", "30", "--repeats", "1", "--latency-seconds", "0.3",
            "--out", str(tmp_path / "out"), "--docs", str(docs),
            "--summary-dir", str(tmp_path / "sum")]  # fmt: skip
    assert cli.main(args) == 0
    text = docs.read_text()
    assert "kept" in text and "| jobqueue |" in text and "p50 ms" in text
    assert json.loads((tmp_path / "out" / "samples.json").read_text())["samples"]
    assert "<!-- bench:summary:start -->" in text and "| workload | jobqueue | best peer |" in text
    saved = json.loads((tmp_path / "sum" / "head_to_head.json").read_text())
    assert saved["command"].startswith("python -m bench --systems jobqueue")
    assert {row["key"] for row in saved["rows"]} >= {"enqueue_one", "process_best", "latency_p99"}


def test_the_summary_puts_each_headline_figure_against_the_best_peer() -> None:
    samples = [
        Sample("jobqueue", 1, "enqueue_one", 6000.0, True, {}),
        Sample("huey", 1, "enqueue_one", 5000.0, True, {}),
        Sample("rq", 1, "enqueue_one", 3000.0, True, {}),
        Sample("jobqueue", 1, "latency", None, True, {"p50_ms": 1.0, "p99_ms": 2.0}),
        Sample("huey", 1, "latency", None, True, {"p50_ms": 2.0, "p99_ms": 4.0}),
    ]
    figures = headlines.head_to_head(headline_medians(samples, ["jobqueue", "huey", "rq"]))
    rows = {
        row[0].split("]")[0].lstrip("["): row
        for row in summary.rows([summary.step_record("x", "c", "1", figures)])
    }
    assert rows["enqueue 1-by-1"][1:7] == [
        "6,000/s",
        "huey",
        "5,000/s",
        "1.20x",
        "≥ 0.85x the best peer (within 15%)",
        "yes",
    ]
    assert rows["latency p50 at 100/s (tuned workers)"][1:5] == [
        "1.00 ms",
        "huey",
        "2.00 ms",
        "0.50x (lower is better)",
    ]
    # No batch or processing samples: those rows say so rather than vanish.
    assert rows["batch enqueue"][1:3] == ["n/a", "-"]
    assert rows["cold start, default worker command"][1] == "not measured yet"
