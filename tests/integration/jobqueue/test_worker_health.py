"""`jobqueue worker-health` against real worker processes: healthy while the heartbeat loop runs (also
while Redis is down), stale once the process is frozen, gone after a clean exit."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from jq_testing import wait_until
from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.embedded.redis_server import RedisServer, free_port

pytestmark = pytest.mark.timeout(60)

StartWorker = Callable[..., object]


def probe(directory: Path, max_age: float) -> subprocess.CompletedProcess[str]:
    """What the kubelet runs (the exec liveness probe of the worker container)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "jobqueue",
            "worker-health",
            "--dir",
            str(directory),
            "--max-age",
            str(max_age),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_healthy_while_running_stale_when_stopped_gone_after_exit(
    settings: Settings, start_worker: Callable[..., object], tmp_path: Path
) -> None:
    health = tmp_path / "health"
    fast = settings.model_copy(update={"health_dir": str(health), "heartbeat_seconds": 0.2})
    worker = start_worker("--worker-id", "pod-1", "--pool", "thread", worker_settings=fast)
    wait_until(lambda: probe(health, 2).returncode == 0, timeout=30)

    worker.signal_group(signal.SIGSTOP)  # type: ignore[attr-defined]
    try:
        wait_until(lambda: probe(health, 2).returncode == 1, timeout=15)
        assert "stale" in probe(health, 2).stderr
    finally:
        worker.signal_group(signal.SIGCONT)  # type: ignore[attr-defined]
    wait_until(lambda: probe(health, 2).returncode == 0, timeout=15)

    assert worker.terminate() == 0  # type: ignore[attr-defined]
    assert not (health / "pod-1").exists()
    assert probe(health, 2).returncode == 1


def test_a_redis_outage_does_not_fail_the_probe(
    settings: Settings, start_worker: StartWorker, tmp_path: Path
) -> None:
    # Were the probe to ask Redis, an outage would make every kubelet restart its workers at once.
    redis = RedisServer(tmp_path / "redis").start()
    try:
        health = tmp_path / "health"
        private = settings.model_copy(
            update={"health_dir": str(health), "redis_url": SecretStr(redis.url), "heartbeat_seconds": 0.2}
        )
        worker = start_worker("--worker-id", "pod-2", "--pool", "thread", worker_settings=private)
        wait_until(lambda: probe(health, 2).returncode == 0, timeout=30)
        redis.stop()
        wait_until(lambda: "heartbeat failed" in worker.log(), timeout=30)  # type: ignore[attr-defined]
        time.sleep(2.5)  # longer than --max-age: only a loop that kept running keeps the file fresh
        assert probe(health, 2).returncode == 0
    finally:
        redis.stop()


@pytest.mark.timeout(90)
def test_a_worker_started_before_redis_waits_for_it_alive_and_then_serves(
    settings: Settings, start_worker: StartWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Helm install or a node back before Redis: exiting would be restarted later and later by the kubelet.
    port = free_port()
    health = tmp_path / "health"
    url = f"redis://127.0.0.1:{port}/0"
    private = settings.model_copy(update={"health_dir": str(health), "redis_url": SecretStr(url)})
    monkeypatch.setenv("JOBQUEUE_HEALTH_DIR", str(health))
    worker = start_worker("--worker-id", "pod-3", "--pool", "process", worker_settings=private)
    wait_until(lambda: worker.log().count("waiting for Redis") >= 3, timeout=30)  # type: ignore[attr-defined]
    assert probe(health, 10).returncode == 0  # alive, only waiting
    redis = RedisServer(tmp_path / "redis", port=port).start()
    client = Client(private)
    try:
        assert client.enqueue("add", [2, 3]).result(timeout=30) == 5
        assert worker.process.poll() is None  # type: ignore[attr-defined]
    finally:
        client.close()
        redis.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cause", ["wait 0", "refused password"])
def test_a_worker_that_must_not_wait_exits_2_at_once_with_one_line(
    settings: Settings, start_worker: StartWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cause: str
) -> None:
    with contextlib.ExitStack() as servers:
        if cause == "wait 0":
            monkeypatch.setenv("JOBQUEUE_REDIS_STARTUP_WAIT_SECONDS", "0")
            url = f"redis://127.0.0.1:{free_port()}/0"
            said = "Connection refused"
        else:
            guarded = RedisServer(tmp_path / "guarded", password="s3cret").start()
            servers.callback(guarded.stop)
            url = f"redis://:wrong@127.0.0.1:{guarded.port}/0"
            said = "Redis refused the connection"
        worker = start_worker(
            "--pool", "thread", worker_settings=settings.model_copy(update={"redis_url": SecretStr(url)})
        )
        started = time.monotonic()
        assert worker.process.wait(30) == 2  # type: ignore[attr-defined]
        assert time.monotonic() - started < 20  # the default wait is 120 s: it did not wait
        log = worker.log()  # type: ignore[attr-defined]
        assert said in log and "Traceback" not in log and "waiting for Redis" not in log
