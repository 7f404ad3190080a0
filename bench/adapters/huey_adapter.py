"""Huey: ``huey_consumer`` (default 1 worker thread); tuned = 4 threads (best of 1-8 threads, 2 processes)."""

from __future__ import annotations

from pathlib import Path

from bench.adapters.base import Adapter, WorkerSetting

APP = "bench.tasks.huey_tasks.huey"


def _default(bin_dir: Path, redis_url: str) -> list[str]:
    return [str(bin_dir / "huey_consumer"), APP]


def _tuned(bin_dir: Path, redis_url: str) -> list[str]:
    return [str(bin_dir / "huey_consumer"), APP, "-w", "4", "-k", "thread"]


ADAPTER = Adapter(
    name="huey",
    venv="peers",
    has_batch=False,
    default=WorkerSetting("huey_consumer (defaults: 1 thread worker)", _default),
    tuned=WorkerSetting("huey_consumer -w 4 -k thread", _tuned),
)
