"""RQ: ``rq worker`` (forks a work horse per job) by default; tuned = a pool of 2 non-forking workers."""

from __future__ import annotations

from pathlib import Path

from bench.adapters.base import Adapter, ArgvBuilder, WorkerSetting


def _default(bin_dir: Path, redis_url: str) -> list[str]:
    return [str(bin_dir / "rq"), "worker", "--url", redis_url, "--burst", "-q", "bench"]


def _pool(burst: bool) -> ArgvBuilder:
    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        return [
            str(bin_dir / "rq"), "worker-pool", "--url", redis_url, *(["--burst"] if burst else []), "-q",
            "-n", "2", "-w", "rq.worker.SimpleWorker", "bench",
        ]  # fmt: skip

    return argv


ADAPTER = Adapter(
    name="rq",
    venv="peers",
    has_batch=True,
    default=WorkerSetting("rq worker --burst (one worker, fork per job)", _default),
    tuned=WorkerSetting(
        "rq worker-pool -n 2 -w rq.worker.SimpleWorker --burst (no fork per job)", _pool(True)
    ),
    # Burst mode exits on an empty queue; the latency run feeds the queue slowly.
    steady=WorkerSetting("rq worker-pool -n 2 -w rq.worker.SimpleWorker", _pool(False)),
)
