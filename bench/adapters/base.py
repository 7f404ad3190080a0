"""What the orchestrator needs to know about a system. Adapters import nothing from the system itself
(peers live in another venv); their task modules (bench.tasks.*) do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# (bin dir of the system's venv, redis url) -> worker argv
ArgvBuilder = Callable[[Path, str], list[str]]


@dataclass(frozen=True)
class WorkerSetting:
    """One way of running the system's worker command."""

    describe: str  # shown in docs/benchmarks.md
    argv: ArgvBuilder


@dataclass(frozen=True)
class Adapter:
    """A system under test."""

    name: str
    venv: Literal["main", "peers", "taskiq"]  # see bench.peers_env
    has_batch: bool
    default: WorkerSetting
    tuned: WorkerSetting
    # The latency run needs a worker that keeps running on an empty queue; None = the tuned one.
    steady: WorkerSetting | None = None
    # Seconds to let the worker start before a latency run (process spawn, imports).
    warmup_seconds: float = 3.0
    # Seconds between SIGTERM and SIGKILL when a run is over (measured and checked by then).
    stop_timeout: float = 15.0

    def setting(self, which: str) -> WorkerSetting:
        """'default', 'tuned' or 'steady'."""
        if which == "default":
            return self.default
        if which == "steady" and self.steady is not None:
            return self.steady
        return self.tuned
