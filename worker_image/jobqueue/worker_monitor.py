"""Worker monitoring, pure: which workers are live, stale or dead by the age of their last heartbeat, the
leases recovered from each worker and each queue (as recover.lua counts them), and the leases still held
by workers that are gone. broker/worker_monitor.py reads the raw values from Redis; this module only
decides and shapes them, so every rule here is unit-tested without I/O."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.settings import Settings

# Missed heartbeats after which a worker is stale: one late beat under load is normal, three are not.
STALE_AFTER_BEATS = 3


class Liveness(enum.StrEnum):
    """How recently a worker was heard from."""

    LIVE = "live"  # heartbeating
    STALE = "stale"  # missed several beats; its leases still hold, it may yet come back
    DEAD = "dead"  # silent for longer than a lease: every lease it held has expired


@dataclass(frozen=True)
class Thresholds:
    """Heartbeat ages (seconds) where a worker turns stale and then dead."""

    stale_after: float
    dead_after: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        """Stale after STALE_AFTER_BEATS heartbeat intervals (JOBQUEUE_HEARTBEAT_SECONDS, capped at a third
        of the lease); dead after JOBQUEUE_LEASE_SECONDS, when any lease it held has expired and the
        reapers may recover it. Dead is never earlier than stale."""
        stale = STALE_AFTER_BEATS * settings.effective_heartbeat_seconds
        return cls(stale_after=stale, dead_after=max(stale, settings.lease_seconds))

    def classify(self, heartbeat_age: float | None) -> Liveness:
        """The liveness of a worker whose last heartbeat is ``heartbeat_age`` seconds old (None: its
        heartbeat record is gone altogether)."""
        if heartbeat_age is None or heartbeat_age > self.dead_after:
            return Liveness.DEAD
        if heartbeat_age > self.stale_after:
            return Liveness.STALE
        return Liveness.LIVE


@dataclass(frozen=True)
class QueueRecoveries:
    """One queue's recovery counts (its recoveries hash, written by recover.lua)."""

    by_worker: Mapping[str, int]
    last_by_worker: Mapping[str, float]  # unix seconds
    last_at: float | None  # unix seconds
    # The hash's own 'total': the per-worker counts are trimmed to the most recent workers, this is not.
    counted_total: int | None = None

    @property
    def total(self) -> int:
        """Leases recovered on this queue (from the per-worker counts in a hash written before 'total')."""
        return self.counted_total if self.counted_total is not None else sum(self.by_worker.values())

    @classmethod
    def parse(cls, fields: Mapping[str, str]) -> QueueRecoveries:
        """Decode the hash; a garbled value (not a whole count, not a finite time) reads as absent rather
        than failing the whole report: only recover.lua writes it, but anyone with Redis access can."""
        counts: dict[str, int] = {}
        last: dict[str, float] = {}
        for name, value in fields.items():
            kind, _, worker = name.partition(":")
            if kind == "w" and (count := _count(value)) is not None:
                counts[worker] = count
            elif kind == "t" and (at := _time_ms(value)) is not None:
                last[worker] = at / 1000
        last_at = _time_ms(fields.get("last_at"))
        return cls(counts, last, None if last_at is None else last_at / 1000, _count(fields.get("total")))


def _count(value: str | None) -> int | None:
    try:
        count = int(value) if value is not None else None
    except ValueError:
        return None
    return count if count is not None and 0 <= count < 2**63 else None


def _time_ms(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    # A Redis TIME in ms; anything else (inf, nan, negative) is not a time.
    return number if number is not None and math.isfinite(number) and number >= 0 else None


@dataclass(frozen=True)
class HeldLease:
    """A lease found in a queue's lease set, with the worker its task hash names."""

    queue: str
    task_id: str
    worker: str
    expires_at: float  # unix seconds


@dataclass(frozen=True)
class MonitorInput:
    """Everything the report is computed from, as read from Redis in one pass."""

    heartbeats: Mapping[str, float]  # worker id -> last heartbeat (unix seconds), the registry
    reported: frozenset[str]  # workers whose heartbeat record (hash) still exists
    recoveries: Mapping[str, QueueRecoveries]  # queue -> counts
    leases: Sequence[HeldLease]
    now: float  # unix seconds


def _seconds(value: float | None) -> float | None:
    return round(value, 3) if value is not None and math.isfinite(value) else None


def monitor_stats(data: MonitorInput, thresholds: Thresholds) -> dict[str, Any]:
    """The JSON-ready report of GET /api/v1/workers/monitor/stats (docs/api.md, "Worker monitoring").

    A lease is orphaned when the worker its task names is dead or unknown: nothing renews it, and it
    stays until a reaper recovers it (at most one lease period after it expired)."""
    liveness: dict[str, Liveness] = {}
    workers = []
    for worker_id, beat in sorted(data.heartbeats.items()):
        # A score of -inf / inf is possible in a sorted set: no age, so dead (JSON has no infinity).
        age = max(0.0, data.now - beat) if math.isfinite(beat) else None
        state = thresholds.classify(age if worker_id in data.reported else None)
        liveness[worker_id] = state
        workers.append({"id": worker_id, "state": state.value, "heartbeat_age_seconds": _seconds(age)})
    counts = {state.value: 0 for state in Liveness}
    for state in liveness.values():
        counts[state.value] += 1
    by_worker: dict[str, int] = {}
    last_by_worker: dict[str, float] = {}
    for rec in data.recoveries.values():
        for worker_id, n in rec.by_worker.items():
            by_worker[worker_id] = by_worker.get(worker_id, 0) + n
        for worker_id, at in rec.last_by_worker.items():
            last_by_worker[worker_id] = max(at, last_by_worker.get(worker_id, at))
    last = [rec.last_at for rec in data.recoveries.values() if rec.last_at is not None]
    orphaned: dict[str, list[dict[str, Any]]] = {}
    for lease in data.leases:
        if liveness.get(lease.worker, Liveness.DEAD) is Liveness.DEAD:
            orphaned.setdefault(lease.queue, []).append(
                {
                    "task_id": lease.task_id,
                    "worker": lease.worker,
                    "lease_expired_seconds_ago": _seconds(max(0.0, data.now - lease.expires_at)),
                }
            )
    return {
        "thresholds": {
            "stale_after_seconds": thresholds.stale_after,
            "dead_after_seconds": thresholds.dead_after,
        },
        "workers": {**counts, "total": len(liveness)},
        "by_worker": workers,
        "leases_recovered": {
            "total": sum(rec.total for rec in data.recoveries.values()),
            "last_recovery_at": max(last) if last else None,
            "by_worker": [
                {"worker": w, "recovered": n, "last_recovery_at": last_by_worker.get(w)}
                for w, n in sorted(by_worker.items())
            ],
            "by_queue": [
                {"queue": q, "recovered": rec.total, "last_recovery_at": rec.last_at}
                for q, rec in sorted(data.recoveries.items())
                if rec.total
            ],
        },
        "orphaned_leases": [
            {"queue": q, "count": len(items), "leases": sorted(items, key=lambda i: str(i["task_id"]))}
            for q, items in sorted(orphaned.items())
        ],
    }
