"""The worker's liveness file: each worker process touches ``<health dir>/<worker id>`` on every pass of
its heartbeat loop, and ``jobqueue worker-health`` (a Kubernetes exec liveness probe) reads the ages.

Why a local file and not the heartbeat in Redis: the probe must judge this process, not the broker. Were
it to read Redis, a Redis outage would fail every worker's probe at once and the kubelets would restart
the whole fleet, losing the in-flight work they were still able to finish; a probe also runs every few
seconds in every pod, and a local stat costs nothing. The file is touched whether or not the Redis call
of that pass succeeded: the question is whether the heartbeat loop still runs (a SIGSTOPped, deadlocked
or dead-thread worker stops touching it), and the operator already judges the Redis heartbeat.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Worker ids are pod names or host-pid-random; anything else becomes "_" so an id never escapes the dir.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def liveness_path(directory: Path, worker_id: str) -> Path:
    """The file of one worker process."""
    return directory / (_UNSAFE.sub("_", worker_id).lstrip(".") or "_")


class LivenessFile:
    """Touched by a worker's heartbeat loop; removed on a clean exit (a stopped process is not stale)."""

    def __init__(self, directory: str | None, worker_id: str) -> None:
        self.path = liveness_path(Path(directory), worker_id) if directory else None
        self._warned = False

    def touch(self) -> None:
        """Mark this process alive now. Never raises: a full or read-only disk is logged once, and the
        probe then reports the file stale, which is the truth about this process's liveness signal."""
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
            os.utime(self.path)
        except OSError as exc:
            if not self._warned:
                log.warning("cannot touch the liveness file %s: %s", self.path, exc)
                self._warned = True

    def remove(self) -> None:
        """Forget this process (clean exit)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class HealthReport:
    """Ages in seconds of every worker's liveness file, and the verdict."""

    ages: dict[str, float]
    max_age: float

    @property
    def stale(self) -> list[str]:
        """Workers whose file is older than ``max_age``."""
        return sorted(worker for worker, age in self.ages.items() if age > self.max_age)

    @property
    def healthy(self) -> bool:
        """At least one worker, and none stale (one wedged process of ``--processes`` N fails the pod)."""
        return bool(self.ages) and not self.stale

    def describe(self) -> str:
        """One line for the probe's output (kubectl describe pod shows it on failure)."""
        if not self.ages:
            return "no worker has touched its liveness file yet"
        ages = ", ".join(f"{worker} {age:.1f}s" for worker, age in sorted(self.ages.items()))
        verdict = f"stale (> {self.max_age:g}s): {', '.join(self.stale)}" if self.stale else "ok"
        return f"{verdict}; heartbeat loop ages: {ages}"


def read_health(directory: Path, max_age: float, now: float | None = None) -> HealthReport:
    """The ages of the liveness files in ``directory`` (a missing directory has none)."""
    at = time.time() if now is None else now
    ages: dict[str, float] = {}
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        entries = []
    for entry in entries:
        try:
            ages[entry.name] = max(0.0, at - entry.stat().st_mtime)
        except FileNotFoundError:
            continue  # removed by a clean exit between the listing and the stat
    return HealthReport(ages, max_age)
