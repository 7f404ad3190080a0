"""Celery: ``celery worker`` (default prefork pool, concurrency = CPU count = 2, prefetch multiplier 4);
tuned = the threads pool with 4 threads (best of solo, prefork x 64 prefetch, 4 and 16 threads)."""

from __future__ import annotations

from pathlib import Path

from bench.adapters.base import Adapter, WorkerSetting

APP = "bench.tasks.celery_tasks"


def _worker(extra: list[str], describe: str) -> WorkerSetting:
    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        return [str(bin_dir / "celery"), "-A", APP, "worker", "-Q", "bench", "--loglevel", "WARNING", *extra]

    return WorkerSetting(describe, argv)


ADAPTER = Adapter(
    name="celery",
    venv="peers",
    has_batch=False,
    default=_worker([], "celery -A ... worker (defaults: prefork, concurrency = 2)"),
    # A no-op is all dispatch: threads skip the prefork pool's pipe hop per task (as for jobqueue).
    tuned=_worker(["--pool", "threads", "--concurrency", "4"], "celery -A ... worker --pool threads -c 4"),
)
