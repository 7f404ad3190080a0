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
    # A no-op task is all dispatch overhead: threads avoid the pipe hop to a child process per task. 8
    # threads, not 16: with 16 the GIL rotates among so many busy threads that the fetch thread waits
    # milliseconds for it and the prefetch buffer runs dry (bench.worker_cpu: 15,000/s at 8 against
    # 12,800/s at 16, 28 against 31 us of worker CPU per task, 3 interleaved rounds).
    tuned=_worker("thread", 8),
)
