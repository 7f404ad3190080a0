"""Dramatiq: ``dramatiq`` (default 2 processes on this machine x 8 threads); tuned = 2 x 32."""

from __future__ import annotations

from pathlib import Path

from bench.adapters.base import Adapter, WorkerSetting

MODULE = "bench.tasks.dramatiq_tasks"


def _worker(processes: int | None, threads: int | None) -> WorkerSetting:
    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        cmd = [str(bin_dir / "dramatiq"), MODULE, "--queues", "bench"]
        if processes is not None:
            cmd += ["--processes", str(processes)]
        if threads is not None:
            cmd += ["--threads", str(threads)]
        return cmd

    if processes is None:
        return WorkerSetting("dramatiq (defaults: processes = CPU count = 2, threads = 8)", argv)
    return WorkerSetting(f"dramatiq --processes {processes} --threads {threads}", argv)


ADAPTER = Adapter(
    name="dramatiq",
    venv="peers",
    has_batch=False,
    default=_worker(None, None),
    # More threads = more messages prefetched per process; a probe of 1-32 threads found 32 best here.
    tuned=_worker(2, 32),
)
