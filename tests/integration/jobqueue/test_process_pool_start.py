"""How `jobqueue worker`'s process pool starts its children: the first ones forked from the worker before
it connects or starts a thread (no import to wait for), later ones from the fork server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jq_testing import runs, wait_until, worker_env

from jobqueue import Client, Settings
from jobqueue.embedded.redis_server import free_port

pytestmark = pytest.mark.timeout(90)

StartWorker = Callable[..., Any]


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads the process tree from /proc")
def test_first_children_are_forked_from_the_worker_and_a_replacement_from_the_fork_server(
    client: Client, start_worker: StartWorker
) -> None:
    worker = start_worker("--pool", "process", "--concurrency", "2")
    assert client.enqueue("add", [1, 2]).result(timeout=30) == 3
    # Forked from the worker itself: same command line (a spawned child runs `-c ...spawn_main`).
    forked = [c for c in children(worker.pid) if cmdline(c) == cmdline(worker.pid)]
    assert len(forked) == 2
    servers = [c for c in children(worker.pid) if b"forkserver" in cmdline(c)]
    assert len(servers) == 1

    os.kill(forked[0], signal.SIGKILL)  # an idle child dies: the pool replaces it from the fork server
    wait_until(lambda: len(children(servers[0])) == 1, 30)
    handles = [client.enqueue("record", [], {"sleep": 0.2}) for _ in range(2)]
    for h in handles:
        h.result(timeout=30)
    pids = {int(pid) for _, what, pid in runs(client) if what == "done"}
    assert pids == {forked[1], *children(servers[0])}  # both slots serve tasks


def test_a_worker_that_cannot_reach_redis_at_start_exits_with_one_line(settings: Settings) -> None:
    # Its first children are forked before it connects, and they ignore SIGTERM, which is what Python's
    # exit sends daemon children before waiting for them: the worker printed a driver traceback and then
    # hung for ever. Now they are stopped, and the error is one line with exit code 2, once the worker
    # has waited for Redis as long as it was told to (worker/redis_at_start.py).
    env = {
        **os.environ,
        **worker_env(settings),
        "JOBQUEUE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "JOBQUEUE_REDIS_STARTUP_WAIT_SECONDS": "1.5",
    }
    argv = ["--log-format", "text", "worker", "--app", "jq_test_app:app", "--pool", "process"]
    result = subprocess.run(
        [sys.executable, "-m", "jobqueue", *argv, "--concurrency", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("error: Redis unavailable"), result.stderr[
        -2000:
    ]
    assert "waiting for Redis" in result.stderr and "Traceback" not in result.stderr
