"""The soak's accounting, pure: the run lines its tasks wrote, judged against the faults it injected, and
the one table it prints (bench/soak.py gathers the inputs)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Run:
    """One start of a task body, as bench/soak_tasks.py wrote it."""

    task_id: str
    attempt: int
    group: int  # process group of the worker that ran it (a SIGKILL takes the whole group)
    started: float  # unix seconds


def read_runs(runs_dir: Path) -> list[Run]:
    """Every run line in ``runs_dir``; a torn last line (a kill mid-write) is skipped, not guessed at."""
    runs: list[Run] = []
    for path in sorted(runs_dir.glob("*.runs")):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 4:
                runs.append(Run(parts[0], int(parts[1]), int(parts[2]), float(parts[3])))
    return runs


def duplicate_runs(runs: Iterable[Run], killed_groups: set[int], redis_crashes: Sequence[float]) -> int:
    """Runs beyond the at-least-once rule: a task body may run again only after its earlier run's lease
    could have expired, i.e. that run's worker was killed, or Redis crashed after that run had started.
    The same attempt (fencing token) twice is never allowed."""
    by_task: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        by_task[run.task_id].append(run)
    duplicates = 0
    for task_runs in by_task.values():
        task_runs.sort(key=lambda r: (r.attempt, r.started))
        for earlier, later in itertools.pairwise(task_runs):
            if earlier.attempt == later.attempt:
                duplicates += 1
                continue
            killed = earlier.group in killed_groups
            crashed = any(earlier.started <= t <= later.started for t in redis_crashes)
            if not (killed or crashed):
                duplicates += 1
    return duplicates


@dataclass
class SoakReport:
    """What the soak measured; ``problems()`` is empty when every guarantee held."""

    minutes: float
    submitted_client: int = 0
    submitted_api: int = 0
    refused: int = 0  # enqueues answered with an error (Redis down): never acknowledged, so not "in"
    done: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    reruns_allowed: int = 0
    duplicates: int = 0
    lost: int = 0
    recorded: int = 0
    unrecorded: int = 0
    parked_rejects: int = 0
    max_recorder_lag: float = 0.0
    workers_killed: int = 0
    redis_crashes: int = 0
    postgres_outages: int = 0
    service_restarts: dict[str, int] = field(default_factory=dict)
    http_requests: int = 0
    http_500: int = 0
    hostile: int = 0
    hostile_422: int = 0
    hostile_other: list[int] = field(default_factory=list)  # statuses of the others (0: no answer)
    wall_seconds: float = 0.0

    @property
    def tasks_in(self) -> int:
        """Acknowledged enqueues."""
        return self.submitted_client + self.submitted_api

    def problems(self) -> list[str]:
        """Each broken guarantee, in words."""
        found = [
            f"{name}: {value}"
            for name, value in (
                ("lost", self.lost),
                ("duplicates", self.duplicates),
                ("unrecorded", self.unrecorded),
                ("HTTP 500", self.http_500),
            )
            if value
        ]
        if self.hostile_422 != self.hostile:
            found.append(
                f"hostile submits not answered 422: {self.hostile - self.hostile_422} "
                f"(answers: {sorted(self.hostile_other)})"
            )
        if self.tasks_in == 0:
            found.append("no task was submitted")
        return found

    def rows(self) -> list[tuple[str, str]]:
        """The table, one (measure, value) per row."""
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        services = ", ".join(f"{k} {v}" for k, v in sorted(self.service_restarts.items())) or "none"
        return [
            ("duration", f"{self.minutes:g} min of load, {self.wall_seconds:.0f} s wall"),
            ("tasks in", f"{self.tasks_in} (client {self.submitted_client}, API {self.submitted_api}; "
                         f"{self.refused} refused while Redis was down)"),
            ("done", f"{self.done} ({statuses})"),
            ("duplicates", f"{self.duplicates} (re-runs after a lease could expire, allowed: "
                           f"{self.reruns_allowed})"),
            ("lost", str(self.lost)),
            ("record complete", f"{self.recorded}/{self.done} finished tasks with their final row in "
                                f"PostgreSQL ({self.unrecorded} missing; "
                                f"{self.parked_rejects} parked rejects)"),
            ("max recorder lag", f"{self.max_recorder_lag:.1f} s"),
            ("restarts", f"{self.workers_killed} workers SIGKILLed, {self.redis_crashes} Redis crashes, "
                         f"{self.postgres_outages} PostgreSQL outages; services restarted: {services}"),
            ("HTTP 500s", f"{self.http_500} of {self.http_requests} API requests ({self.hostile_422}/"
                          f"{self.hostile} submits with NUL and a lone surrogate answered 422)"),
        ]  # fmt: skip


def format_table(report: SoakReport) -> str:
    """The one table the soak prints (Markdown, so it pastes into docs/guarantees.md as it is)."""
    rows = report.rows()
    width = max(len(name) for name, _ in rows)
    lines = [f"| {'measure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
    lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
    return "\n".join(lines)
