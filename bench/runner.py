"""One benchmark cycle per system: enqueue, then process with the worker command started afterwards.

Each phase is bracketed by Redis INFO snapshots; each processing run is checked for exactly-once
execution. The orchestrator never imports a system: it runs ``bench.enqueue`` and the worker command as
subprocesses in the system's venv, against the one dedicated Redis server of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.adapters import Adapter
from bench.record import RUNS_FILE_ENV
from bench.redis_stats import cost_between, snapshot
from bench.runs import check, count_lines, first_starts, wait_for_runs

REPO_ROOT = Path(__file__).resolve().parent.parent
# A worker that records nothing new for this long is stuck or has lost tasks: the run is a failure.
STALL_SECONDS = 20.0


@dataclass
class Sample:
    """One measured figure of one run."""

    system: str
    rep: int
    metric: str  # enqueue_one | enqueue_batch | process_default | process_tuned | latency
    value: float | None  # tasks/s (latency: p50 ms); None when the run failed
    ok: bool = True
    detail: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Runs the phases of a benchmark against one Redis server."""

    def __init__(self, redis_url: str, out_dir: Path, bins: dict[str, Path], tasks: int) -> None:
        self.redis_url = redis_url
        self.out_dir = out_dir
        self.bins = bins
        self.tasks = tasks
        self.redis = redis.Redis.from_url(redis_url)

    def _env(self, runs_file: Path | None = None) -> dict[str, str]:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
            "BENCH_REDIS_URL": self.redis_url,
            "JOBQUEUE_REDIS_URL": self.redis_url,
            "PYTHONUNBUFFERED": "1",
        }
        if runs_file is not None:
            env[RUNS_FILE_ENV] = str(runs_file)
        return env

    def flush(self) -> None:
        """Empty the dedicated bench server between systems (never a shared server)."""
        self.redis.flushdb()

    def version(self, adapter: Adapter) -> str:
        """The installed version of a system, asked in its own venv."""
        out = self._driver(adapter, ["version"])
        return str(out["version"])

    def _driver(self, adapter: Adapter, args: list[str]) -> dict[str, Any]:
        python = self.bins[adapter.venv] / "python"
        proc = subprocess.run(
            [str(python), "-m", "bench.enqueue", adapter.name, *args],
            cwd=REPO_ROOT,
            env=self._env(),
            capture_output=True,
            check=False,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{adapter.name} enqueue failed: {proc.stderr.decode()[-2000:]}")
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def enqueue(self, adapter: Adapter, rep: int, mode: str) -> Sample:
        """Enqueue ``tasks`` no-op tasks one by one or in batches; tasks/s plus Redis cost."""
        before = snapshot(self.redis)
        out = self._driver(adapter, [mode, str(self.tasks)])
        cost = cost_between(before, snapshot(self.redis))
        detail = {"seconds": out["seconds"], **cost.per_task(self.tasks), "by_command": cost.by_command}
        return Sample(adapter.name, rep, f"enqueue_{mode}", self.tasks / out["seconds"], True, detail)

    def _start_worker(
        self, adapter: Adapter, which: str, runs_file: Path, log: Path
    ) -> subprocess.Popen[bytes]:
        argv = adapter.setting(which).argv(self.bins[adapter.venv], self.redis_url)
        with log.open("ab") as log_file:
            # Own session: the worker and every child it forks form one process group we can stop.
            return subprocess.Popen(
                argv, cwd=REPO_ROOT, env=self._env(runs_file), stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def process(self, adapter: Adapter, rep: int, which: str, copies: int = 1) -> Sample:
        """Start the worker command (``copies`` of it side by side) on ``tasks`` pre-loaded tasks;
        tasks/s from the first task start to the last."""
        name = f"{adapter.name}-{which}-r{rep}"
        runs_file = self.out_dir / f"{name}.runs"
        runs_file.unlink(missing_ok=True)
        before = snapshot(self.redis)
        logs = [self.out_dir / f"{name}-{i}.log" for i in range(copies)]
        workers = [self._start_worker(adapter, which, runs_file, log) for log in logs]
        after = None
        try:
            seen, last_progress = 0, time.monotonic()
            while True:
                n = count_lines(runs_file)
                if n >= self.tasks and check(runs_file, range(self.tasks)).lost == 0:
                    break
                if n > seen:
                    seen, last_progress = n, time.monotonic()
                elif time.monotonic() - last_progress > STALL_SECONDS:
                    break
                if all(w.poll() is not None for w in workers) and count_lines(runs_file) == n:
                    break  # exited (burst mode done, or crashed): nothing more will come
                time.sleep(0.01)
            after = snapshot(self.redis)
            # Let late duplicates surface before counting.
            time.sleep(0.5)
        finally:
            for worker in workers:
                stop_worker(worker, adapter.stop_timeout)
        result = check(runs_file, range(self.tasks))
        cost = cost_between(before, after or snapshot(self.redis))
        detail = {
            **asdict(result),
            **cost.per_task(self.tasks),
            "by_command": cost.by_command,
            "exit_code": workers[0].returncode,
        }
        return Sample(adapter.name, rep, f"process_{which}", result.rate if result.ok else None, result.ok,
                      detail)  # fmt: skip

    def latency(self, adapter: Adapter, rep: int, rate: float, seconds: float) -> Sample:
        """Task start minus enqueue time at a steady ``rate`` tasks/s, tuned worker already running."""
        name = f"{adapter.name}-latency-r{rep}"
        runs_file = self.out_dir / f"{name}.runs"
        runs_file.unlink(missing_ok=True)
        n = int(rate * seconds)
        worker = self._start_worker(adapter, "steady", runs_file, self.out_dir / f"{name}.log")
        try:
            time.sleep(adapter.warmup_seconds)
            out = self._driver(adapter, ["steady", str(n), "--rate", str(rate)])
            wait_for_runs(runs_file, n, STALL_SECONDS)
        finally:
            stop_worker(worker, adapter.stop_timeout)
        result = check(runs_file, range(n))
        first = first_starts(runs_file)
        lat = sorted((first[s] - out["enqueued_at"][s]) * 1000 for s in first if 0 <= s < n)
        p50 = statistics.median(lat) if lat else None
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
        detail = {**asdict(result), "p50_ms": p50, "p99_ms": p99, "rate": rate}
        return Sample(adapter.name, rep, "latency", p50 if result.ok else None, result.ok, detail)


def stop_worker(worker: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the worker's process group (our own session), then SIGKILL what is left."""
    if worker.poll() is None:
        try:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            return
    # Children of a worker that exited (e.g. a forked pool) may still be in its group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
