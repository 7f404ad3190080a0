"""arq: ``arq <WorkerSettings>``; default max_jobs = 10 with a 0.5 s idle poll; tuned max_jobs = 100."""

from __future__ import annotations

from pathlib import Path

from bench.adapters.base import Adapter, WorkerSetting


def _worker(settings_class: str) -> WorkerSetting:
    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        return [str(bin_dir / "arq"), f"bench.tasks.arq_tasks.{settings_class}"]

    return WorkerSetting(f"arq bench.tasks.arq_tasks.{settings_class}", argv)


ADAPTER = Adapter(
    name="arq",
    venv="peers",
    has_batch=False,
    default=_worker("WorkerSettings"),
    tuned=_worker("TunedWorkerSettings"),
)
