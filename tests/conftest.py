"""Shared fixtures: one real Redis server per test session, a fresh key prefix per test, and helpers
to run real worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jq_testing import worker_env

from jobqueue import Client, Settings
from jobqueue.embedded.redis_server import RedisServer
from k8s.fixtures import (  # noqa: F401 (fixtures, by import)
    kube_api,
    kube_control_plane,
    kube_namespace,
    kubelet_node,
    kubelet_node_images,
)

# PostgreSQL fixtures (server per session, template database per test): tests/support/pg_fixtures.py
pytest_plugins = ["pg_fixtures"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    # A unique prefix isolates each test on the shared server; nothing is ever flushed.
    return Settings(
        redis_url=redis_server.url,
        key_prefix=f"t{uuid.uuid4().hex[:10]}",
        lease_seconds=2.0,
        heartbeat_seconds=0.5,
        # Most tests were written for "a task without a retry policy is not retried"; the product's default
        # of 3 retries is tested where it is the subject (test_defaults.py).
        default_max_retries=0,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    c = Client(settings)
    yield c
    c.close()


class WorkerProcess:
    """A real ``jobqueue worker`` subprocess."""

    def __init__(self, settings: Settings, *args: str, log_path: Path, log_level: str = "INFO") -> None:
        env = {**os.environ, **worker_env(settings)}
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "jobqueue", "--log-level", log_level),
                *("worker", "--app", "jq_test_app:app", *args),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: tests can stop or kill it with its children
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout)
        self._log.close()
        return code

    def signal_group(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()

    def kill_group(self) -> None:
        """SIGKILL the worker and every process of its group: its children die with it only after they
        notice (a child blocked in Redis would otherwise outlive the test and show in the next one)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.kill()


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*args: str, worker_settings: Settings | None = None, log_level: str = "INFO") -> WorkerProcess:
        w = WorkerProcess(
            worker_settings or settings,
            *args,
            log_path=tmp_path / f"worker{len(started)}.log",
            log_level=log_level,
        )
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill_group()
