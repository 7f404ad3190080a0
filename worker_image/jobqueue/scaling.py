"""Pure scaling decisions shared by the Kubernetes operator and the local supervisor of ``jobqueue up``:
how many workers a pool should have, which workers to drain before a scale-down, and which workers are
stale. No I/O: callers read the state, call these, apply the result.

Times are plain float seconds (the caller picks the clock, normally Redis or wall-clock UNIX time), so
tests can pass any moment they like.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jobqueue.errors import ValidationError
from jobqueue.worker_ids import pod_of, pod_worker_ids

# Lowest value Kubernetes accepts for controller.kubernetes.io/pod-deletion-cost: a ReplicaSet removes the
# cheapest pods first when it shrinks, so drained pods are the ones that go.
DRAINED_POD_DELETION_COST = -(2**31)
POD_DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


@dataclass(frozen=True)
class Cooldowns:
    """Minimum seconds since the last scaling action before the next one in each direction."""

    scale_up: float
    scale_down: float


class ScaleReason(enum.StrEnum):
    """Why :func:`desired_replicas` chose its answer (logged and shown in the Scaling condition)."""

    STEADY = "Steady"
    SCALE_UP = "ScaleUp"
    SCALE_DOWN = "ScaleDown"
    SCALE_UP_COOLDOWN = "ScaleUpCooldown"
    SCALE_DOWN_COOLDOWN = "ScaleDownCooldown"
    OUT_OF_BOUNDS = "OutOfBounds"


@dataclass(frozen=True)
class ScaleDecision:
    """``replicas`` is what to set now; ``target`` what the load asks for once cooldowns and steps allow."""

    replicas: int
    target: int
    reason: ScaleReason


def desired_replicas(
    *,
    ready: int,
    in_flight: int,
    target_per_replica: int,
    min_replicas: int,
    max_replicas: int,
    current: int,
    last_scale_time: float | None,
    now: float,
    cooldowns: Cooldowns,
    max_step: int,
    rate_limit_capacity: int | None = None,
    activation_depth: int = 0,
) -> ScaleDecision:
    """Replicas for a pool: clamp(ceil((ready + in_flight) / target_per_replica), min, max), paced.

    ``rate_limit_capacity`` is how many of the ready tasks the queues' rate limits let start before the
    next decision (None: no rate limit). Ready tasks beyond it would only wait on the limiter, so workers
    added for them would sit idle. A pool at zero replicas wakes up only when the backlog exceeds
    ``activation_depth``. A move toward the target waits for the cooldown of its direction since
    ``last_scale_time`` and changes at most ``max_step`` replicas; a pool outside [min, max] (the bounds
    were just edited) is brought inside at once.
    """
    if target_per_replica < 1 or max_step < 1 or min_replicas < 0 or max_replicas < min_replicas:
        raise ValueError("invalid autoscaling policy")
    useful_ready = ready if rate_limit_capacity is None else min(ready, max(rate_limit_capacity, 0))
    backlog = max(useful_ready, 0) + max(in_flight, 0)
    wanted = math.ceil(backlog / target_per_replica)
    if current == 0 and backlog <= activation_depth:
        wanted = 0
    target = min(max(wanted, min_replicas), max_replicas)

    if current < min_replicas or current > max_replicas:
        return ScaleDecision(min(max(current, min_replicas), max_replicas), target, ScaleReason.OUT_OF_BOUNDS)
    if target == current:
        return ScaleDecision(current, target, ScaleReason.STEADY)
    since_last = math.inf if last_scale_time is None else now - last_scale_time
    if target > current:
        if since_last < cooldowns.scale_up:
            return ScaleDecision(current, target, ScaleReason.SCALE_UP_COOLDOWN)
        return ScaleDecision(min(target, current + max_step), target, ScaleReason.SCALE_UP)
    if since_last < cooldowns.scale_down:
        return ScaleDecision(current, target, ScaleReason.SCALE_DOWN_COOLDOWN)
    return ScaleDecision(max(target, current - max_step), target, ScaleReason.SCALE_DOWN)


@dataclass(frozen=True)
class ScalingPolicy:
    """Bounds and pacing of autoscaling, validated; ``decide`` applies :func:`desired_replicas`."""

    min_replicas: int = 1
    max_replicas: int = 10
    target_per_replica: int = 10  # waiting + running tasks one replica should carry
    activation_depth: int = 0  # from zero replicas, scale up only once more tasks than this wait
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

    def decide(
        self,
        *,
        ready: int,
        in_flight: int,
        current: int,
        last_scale_time: float | None,
        now: float,
        rate_limit_capacity: int | None = None,
    ) -> ScaleDecision:
        """desired_replicas with this policy."""
        return desired_replicas(
            ready=ready,
            in_flight=in_flight,
            target_per_replica=self.target_per_replica,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            current=current,
            last_scale_time=last_scale_time,
            now=now,
            cooldowns=Cooldowns(self.scale_up_cooldown_seconds, self.scale_down_cooldown_seconds),
            max_step=self.max_step,
            rate_limit_capacity=rate_limit_capacity,
            activation_depth=self.activation_depth,
        )


@dataclass(frozen=True)
class Worker:
    """One worker pod as the operator sees it: the pod's facts joined with its workers' Redis state
    (``in_flight`` summed over the pod's worker processes)."""

    pod_name: str
    in_flight: int
    pod_ready: bool = True
    draining: bool = False
    created_at: float = 0.0


def choose_workers_to_drain(workers: Sequence[Worker], count: int) -> list[str]:
    """Pod names of the ``count`` workers to remove first, cheapest to lose first.

    Order: workers already draining (the work is under way), then pods that are not ready (they serve
    nothing), then by fewest in-flight tasks (idle ones first), then youngest (least warmed up), with the
    name as a tie-break so repeated reconciles choose the same pods.
    """
    if count <= 0:
        return []
    ranked = sorted(
        workers,
        key=lambda w: (not w.draining, w.pod_ready, w.in_flight, -w.created_at, w.pod_name),
    )
    return [w.pod_name for w in ranked[:count]]


def drained_workers(workers: Iterable[Worker], chosen: Iterable[str]) -> list[str]:
    """Of the chosen workers, those now draining with nothing in flight: safe to remove."""
    wanted = set(chosen)
    return sorted(w.pod_name for w in workers if w.pod_name in wanted and w.draining and w.in_flight == 0)


def deletion_cost_annotations(chosen: Iterable[str]) -> dict[str, dict[str, str]]:
    """Annotations per pod that make the ReplicaSet delete exactly the chosen pods when it shrinks."""
    return {name: {POD_DELETION_COST_ANNOTATION: str(DRAINED_POD_DELETION_COST)} for name in chosen}


def silent_workers(
    worker_ids: Iterable[str], started: float, heartbeats: Mapping[str, float], now: float, stale_after: float
) -> list[str]:
    """Of a pod's workers, those that have not heartbeated for ``stale_after`` seconds; one that never
    heartbeated gets ``stale_after`` from ``started`` (its pod's start) to boot."""
    return sorted(w for w in worker_ids if now - max(heartbeats.get(w, started), started) > stale_after)


def stale_workers(
    running_pods: Mapping[str, float],
    heartbeats: Mapping[str, float],
    now: float,
    stale_after: float,
    processes: Mapping[str, int] | None = None,
) -> list[str]:
    """Running pods with a worker that has not heartbeated for ``stale_after`` seconds.

    ``running_pods`` maps pod name to the time it started running; ``heartbeats`` maps worker id to its
    last heartbeat; ``processes`` the number of worker processes of each pod (default 1), whose ids are
    jobqueue.worker_ids.pod_worker_ids (one process: the pod name itself). A worker that never heartbeated
    gets ``stale_after`` from its pod's start to boot, so a slow image start is not mistaken for a hung
    worker.

    One silent worker makes its pod stale (any, not all): the pod's parent process restarts a worker
    process that died, so one that stays silent is hung, holding its slots and leases, and only a restart
    of the pod gets it back; waiting until all of a pod's workers hang would leave a pod that looks
    healthy serving with fewer workers indefinitely.
    """
    counts = processes or {}
    return sorted(
        pod
        for pod, started in running_pods.items()
        if silent_workers(pod_worker_ids(pod, counts.get(pod, 1)), started, heartbeats, now, stale_after)
    )


def orphaned_workers(
    lease_holders: Iterable[str],
    heartbeats: Mapping[str, float],
    pods: Iterable[str],
    now: float,
    orphan_after: float,
) -> list[str]:
    """Workers holding leases with no pod left and no heartbeat for ``orphan_after`` seconds.

    A holder's pod is jobqueue.worker_ids.pod_of its id (``pod_1`` belongs to ``pod``), which needs no
    heartbeat: it is read from the id alone. Their leases can be recovered now instead of waiting for
    each lease to expire.
    """
    alive = set(pods)
    return sorted(
        worker
        for worker in set(lease_holders)
        if pod_of(worker) not in alive and now - heartbeats.get(worker, -math.inf) > orphan_after
    )
