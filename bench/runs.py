"""Reading a runs file (see bench.record) and checking that every task ran exactly once."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunCheck:
    """Exactly-once accounting and timing of one processing run."""

    expected: int
    executions: int
    unique: int
    duplicates: int  # executions beyond the first, summed over tasks
    lost: int  # expected tasks that never ran
    first_start: float | None
    last_start: float | None

    @property
    def ok(self) -> bool:
        """Exactly once or failed: a run that lost or duplicated a task is a failed run, whatever its speed
        (nothing crashes in a benchmark run, so even an at-least-once system has no excuse to repeat one)."""
        return self.lost == 0 and self.duplicates == 0

    @property
    def rate(self) -> float | None:
        """Tasks per second from the first task's start to the last one's (None when not measurable)."""
        if self.first_start is None or self.last_start is None or self.unique < 2:
            return None
        span = self.last_start - self.first_start
        return (self.unique - 1) / span if span > 0 else None


def read_starts(path: Path) -> list[tuple[int, float]]:
    """(seq, start time) per recorded execution; a torn last line (still being written) is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().split(b"\n"):
        parts = line.split()
        if len(parts) == 2:
            out.append((int(parts[0]), float(parts[1])))
    return out


def first_starts(path: Path) -> dict[int, float]:
    """When each seq first started (a task run twice counts from its first start)."""
    first: dict[int, float] = {}
    for seq, started in read_starts(path):
        first.setdefault(seq, started)
    return first


def wait_for_runs(path: Path, n: int, stall_seconds: float) -> RunCheck:
    """Wait until every seq of range(n) has run, or ``stall_seconds`` passed; the check at the end."""
    deadline = time.monotonic() + stall_seconds
    while check(path, range(n)).lost and time.monotonic() < deadline:
        time.sleep(0.05)
    return check(path, range(n))


def count_lines(path: Path) -> int:
    """Executions recorded so far (cheap enough to poll every few milliseconds)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def check(path: Path, seqs: range) -> RunCheck:
    """Compare the recorded executions with the sequence numbers that were enqueued."""
    starts = read_starts(path)
    counts = Counter(seq for seq, _ in starts)
    expected = set(seqs)
    unique = len(expected & counts.keys())
    times = [t for seq, t in starts if seq in expected]
    return RunCheck(
        expected=len(expected),
        executions=len(starts),
        unique=unique,
        duplicates=sum(c - 1 for c in counts.values() if c > 1),
        lost=len(expected) - unique,
        first_start=min(times) if times else None,
        last_start=max(times) if times else None,
    )
