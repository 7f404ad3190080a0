"""jobqueue: ``jobqueue worker``; default = process pool of 4 (the CLI default)."""

from __future__ import annotations

from pathlib import Path

from bench.adapters.base import Adapter, WorkerSetting

APP = "bench.tasks.jobqueue_tasks:app"


def worker_setting(pool: str, concurrency: int, processes: int = 1) -> WorkerSetting:
    """``jobqueue worker`` with this pool, concurrency and number of worker processes."""
    extra = ["--processes", str(processes)] if processes > 1 else []

    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        return [
            str(bin_dir / "python"), "-m", "jobqueue", "--log-level", "WARNING", "worker",
            "--app", APP, "--queues", "bench", "--pool", pool, "--concurrency", str(concurrency), *extra,
        ]  # fmt: skip

    flags = " ".join([*extra, "--pool", pool, "--concurrency", str(concurrency)])
    return WorkerSetting(f"jobqueue worker {flags}", argv)


ADAPTER = Adapter(
    name="jobqueue",
    venv="main",
    has_batch=True,
    default=worker_setting("process", 4),
    # A no-op task is all dispatch overhead: threads avoid the pipe hop to a child process per task. 8
    # threads, not 16: with 16 the GIL rotates among so many busy threads that the fetch thread waits
    # milliseconds for it and the prefetch buffer runs dry (bench.worker_cpu: 15,000/s at 8 against
    # 12,800/s at 16, 28 against 31 us of worker CPU per task, 3 interleaved rounds). Two worker processes
    # (`--processes 2`, one per core of this machine): one process is bound by its one interpreter lock;
    # interleaved with one process through the harness's runner, 2 x thread 8 measured 1.3-1.4x it, and
    # 2 x thread 4 / 2 x thread 16 within the noise of 2 x thread 8 (docs/benchmarks.md, "Worker processes").
    tuned=worker_setting("thread", 8, processes=2),
)
