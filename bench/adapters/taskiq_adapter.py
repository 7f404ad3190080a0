"""Taskiq: ``taskiq worker`` (defaults: 2 worker processes, 100 async tasks each, no prefetch beyond them);
tuned = the same 2 processes with 100 messages prefetched beyond the running tasks: the best median of a
probe of --workers 1 / 2 / 3, --max-prefetch 100 and --max-async-tasks 20 (3 runs of 4,000 tasks each,
on the shared 2-core machine, so a wide spread: 509-4,130/s for this setting, 375-1,160/s for the default)."""

from __future__ import annotations

from pathlib import Path

from bench.adapters.base import Adapter, WorkerSetting

BROKER = "bench.tasks.taskiq_tasks:broker"


def _worker(extra: list[str], describe: str) -> WorkerSetting:
    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        # WARNING: taskiq's default INFO level logs a line per task, which no other system does.
        return [str(bin_dir / "taskiq"), "worker", BROKER, "--log-level", "WARNING", *extra]

    return WorkerSetting(describe, argv)


ADAPTER = Adapter(
    name="taskiq",
    venv="taskiq",
    has_batch=False,
    default=_worker([], "taskiq worker ... (defaults: --workers 2, --max-async-tasks 100)"),
    # An idle `taskiq worker` did not exit within 20 s of SIGTERM or SIGINT here; the run is measured and
    # checked before the stop, so do not wait the default 15 s for it.
    stop_timeout=3.0,
    tuned=_worker(
        ["--workers", "2", "--max-prefetch", "100"], "taskiq worker ... --workers 2 --max-prefetch 100"
    ),
)
