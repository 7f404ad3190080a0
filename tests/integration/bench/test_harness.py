"""Smoke test of the benchmark harness (bench/): a tiny run of jobqueue against the session's Redis, so
`make test` keeps `make bench` working. Peer queues are exercised by `make bench` itself; their smoke test
here runs only when bench/.venv-peers exists, and says so loudly when it is skipped."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.adapters import ADAPTERS
from bench.peers_env import PEERS_VENV, ensure_peers_venv, main_bin_dir
from bench.report import markdown, replace_results, table
from bench.runner import Runner
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


def test_losses_fail_the_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.write_text("0 1.0\n1 1.5\n1 1.6\n")
    result = check(runs, range(3))
    assert (result.unique, result.duplicates, result.lost, result.ok) == (2, 1, 1, False)


@pytest.fixture(scope="module")
def peers_venv() -> Path:
    """The peers' own venv; built here under CI (where nothing may skip), else a loud skip."""
    if not (PEERS_VENV / "bin" / "rq").exists():
        if os.environ.get("CI") != "true":
            pytest.skip("PEERS NOT INSTALLED: run `make bench` once (CI builds them)")
        ensure_peers_venv()
    return PEERS_VENV


@pytest.mark.timeout(600)
@pytest.mark.parametrize("peer", ["rq", "dramatiq", "huey", "arq", "celery"])
def test_peer_cycle(peer: str, bench_redis: RedisServer, tmp_path: Path, peers_venv: Path) -> None:
    runner = Runner(
        bench_redis.url, tmp_path, {"main": main_bin_dir(), "peers": peers_venv / "bin"}, tasks=20
    )
    adapter = ADAPTERS[peer]
    assert runner.enqueue(adapter, 1, "one").value
    sample = runner.process(adapter, 1, "tuned")
    assert sample.ok, json.dumps(sample.detail)[:2000]
