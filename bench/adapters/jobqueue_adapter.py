"""jobqueue: ``jobqueue worker``; default = process pool of 4 (the CLI default)."""

from __future__ import annotations

from pathlib import Path

from bench.adapters.base import Adapter, WorkerSetting

APP = "bench.tasks.jobqueue_tasks:app"


def _worker(pool: str, concurrency: int) -> WorkerSetting:
    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        return [
            str(bin_dir / "python"), "-m", "jobqueue", "--log-level", "WARNING", "worker",
            "--app", APP, "--queues", "bench", "--pool", pool, "--concurrency", str(concurrency),
        ]  # fmt: skip

    return WorkerSetting(f"jobqueue worker --pool {pool} --concurrency {concurrency}", argv)


ADAPTER = Adapter(
    name="jobqueue",
    venv="main",
    has_batch=True,
    default=_worker("process", 4),
    # A no-op task is all dispatch overhead: threads avoid the pipe hop to a child process per task.
    tuned=_worker("thread", 16),
)
