"""Pure scaling decisions shared by the Kubernetes operator and the local supervisor of ``jobqueue up``.

desired = clamp(ceil((ready + in_flight) / target_per_replica), min, max), never more replicas than a
rate limit can keep busy, moved at most ``max_step`` at a time and only after the cooldown of its
direction. Idle workers are drained first on the way down, so no task is killed mid-run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from jobqueue.errors import ValidationError


@dataclass(frozen=True)
class ScalingPolicy:
    """Bounds and pacing of autoscaling."""

    min_replicas: int = 1
    max_replicas: int = 10
    target_per_replica: int = 10  # waiting + running tasks one replica should carry
    activation_depth: int = 1  # from zero replicas, scale up only once this many tasks wait
    scale_up_cooldown_seconds: float = 15.0
    scale_down_cooldown_seconds: float = 120.0
    max_step: int = 4

    def __post_init__(self) -> None:
        if self.min_replicas < 0:
            raise ValidationError("min_replicas", "must be >= 0")
        if self.max_replicas < max(1, self.min_replicas):
            raise ValidationError("max_replicas", "must be >= min_replicas and >= 1")
        if self.target_per_replica < 1:
            raise ValidationError("target_per_replica", "must be >= 1")
        if self.max_step < 1:
            raise ValidationError("max_step", "must be >= 1")


@dataclass(frozen=True)
class QueueLoad:
    """What the queues served by a pool hold right now."""

    ready: int
    in_flight: int
    # With a rate limit, replicas beyond what the limit keeps busy are useless: the number of replicas
    # needed to sustain it (None: no limit, or unknown task duration).
    rate_limit_replicas: int | None = None


@dataclass(frozen=True)
class ScalingDecision:
    """The replica count to apply and why."""

    desired: int
    reason: str

    def changes(self, current: int) -> bool:
        """Whether applying it changes anything."""
        return self.desired != current


def rate_limit_replicas(
    rate_limit_per_second: float, average_task_seconds: float, concurrency_per_replica: int
) -> int:
    """Replicas needed to run ``rate_limit_per_second`` tasks of the given duration (at least 1)."""
    busy_slots = rate_limit_per_second * average_task_seconds
    return max(1, math.ceil(busy_slots / max(1, concurrency_per_replica)))


def desired_replicas(
    policy: ScalingPolicy, load: QueueLoad, current: int, seconds_since_last_scale: float | None
) -> ScalingDecision:
    """The replica count for a pool given its load; ``seconds_since_last_scale`` None = never scaled."""
    work = load.ready + load.in_flight
    if current == 0 and work < policy.activation_depth:
        target = 0
    else:
        target = math.ceil(work / policy.target_per_replica)
    reason = f"{work} tasks / {policy.target_per_replica} per replica"
    if load.rate_limit_replicas is not None and target > load.rate_limit_replicas:
        target = load.rate_limit_replicas
        reason += f", capped at {target} by the rate limit"
    bounded = min(max(target, policy.min_replicas), policy.max_replicas)
    if bounded != target:
        reason += f", clamped to [{policy.min_replicas}, {policy.max_replicas}]"
    if bounded == current:
        return ScalingDecision(current, reason + ": steady")
    cooldown = policy.scale_up_cooldown_seconds if bounded > current else policy.scale_down_cooldown_seconds
    if seconds_since_last_scale is not None and seconds_since_last_scale < cooldown:
        return ScalingDecision(current, reason + f": waiting out the {cooldown:g}s cooldown")
    step = max(-policy.max_step, min(policy.max_step, bounded - current))
    return ScalingDecision(current + step, reason + f": {current} -> {current + step}")


def choose_workers_to_drain(in_flight_by_worker: Mapping[str, int], count: int) -> list[str]:
    """The ``count`` workers to remove: idle ones first, then the least busy; ties by id for stability."""
    ranked = sorted(in_flight_by_worker.items(), key=lambda item: (item[1], item[0]))
    return [worker for worker, _ in ranked[: max(0, count)]]


def stale_workers(heartbeat_age_by_worker: Mapping[str, float], threshold_seconds: float) -> list[str]:
    """Workers whose last heartbeat is older than the threshold."""
    return sorted(w for w, age in heartbeat_age_by_worker.items() if age > threshold_seconds)


def deletion_costs(workers: Sequence[str], in_flight_by_worker: Mapping[str, int]) -> dict[str, int]:
    """controller.kubernetes.io/pod-deletion-cost per worker: busier pods cost more to delete, so the
    ReplicaSet removes idle ones first."""
    return {w: int(in_flight_by_worker.get(w, 0)) * 100 for w in workers}
