"""What one reconcile of a WorkerPool should do, decided purely from what the handler read.

The handler reads the Deployment, the pool's pods and the workers' heartbeats, calls :func:`plan_pool`
and applies the plan. Scale-down never lowers the Deployment's replicas over a busy worker: it first asks
the chosen idle workers to drain (stop fetching, finish, exit) and marks their pods as the cheapest to
delete; only once all of them have drained does it lower replicas by that number, so the ReplicaSet
removes exactly those pods. A drained worker stays up, idle, until its pod goes; when the scale-down is
not carried out after all (the backlog came back, a cooldown or a spec change holds replicas up), the
drains it no longer needs are called off (:func:`split_drains`) and those workers fetch again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from jobqueue.worker_ids import pod_worker_ids
from jobqueue_operator.decisions import (
    Cooldowns,
    ScaleDecision,
    Worker,
    choose_workers_to_drain,
    desired_replicas,
    drained_workers,
    silent_workers,
)
from jobqueue_operator.spec import WorkerPoolSpec

# Marks a pod whose worker was asked to drain, so later reconciles (and other operator replicas after a
# restart) know the drain is under way.
DRAIN_ANNOTATION = "jobqueue.dev/drain-requested"
# How many worker processes a pod runs (`jobqueue worker --processes`), set on the pod template by the
# operator, so each pod is judged by the count it was started with, also during a rollout that changes it.
PROCESSES_ANNOTATION = "jobqueue.dev/worker-processes"


@dataclass(frozen=True)
class PodView:
    """The facts of one pod the plan needs."""

    name: str
    running: bool
    ready: bool
    started_at: float  # UNIX seconds the pod started running (creation time before that)
    created_at: float
    drain_requested: bool = False
    terminating: bool = False
    processes: int = 1  # worker processes in the pod (PROCESSES_ANNOTATION), each heartbeating on its own

    @property
    def worker_ids(self) -> list[str]:
        """The ids its workers heartbeat under (one process: the pod name)."""
        return pod_worker_ids(self.name, self.processes)


@dataclass(frozen=True)
class Heartbeat:
    """A worker's last published state, keyed by worker id (jobqueue.worker_ids: the pod name, or
    ``<pod>_<i>`` for the processes of a pod started with ``--processes``)."""

    at: float  # UNIX seconds of the last heartbeat
    in_flight: int
    draining: bool


@dataclass(frozen=True)
class PoolLoad:
    """Ready (startable) and in-flight tasks across the pool's queues."""

    ready: int
    in_flight: int
    rate_limit_capacity: int | None = None


@dataclass(frozen=True)
class PoolPlan:
    """The actions of one reconcile. ``replicas`` is the Deployment's replica count to set."""

    replicas: int
    current: int
    decision: ScaleDecision | None
    request_drain: list[str] = field(default_factory=list)
    call_off_drain: list[str] = field(default_factory=list)  # pods whose drain is no longer needed
    remove: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    draining: list[str] = field(default_factory=list)
    # Worker ids of every live pod: a drain, a call-off or a lease recovery addresses all of a pod's
    # workers.
    pod_workers: dict[str, list[str]] = field(default_factory=dict)
    # The workers of each stale pod that stopped heartbeating: their leases are recovered at once. Their
    # siblings are alive; they drain on the pod's SIGTERM and finish or hand back their own tasks
    # (recovering those too would run a task twice: once by the sibling, once by its new owner).
    silent: dict[str, list[str]] = field(default_factory=dict)

    def workers_of(self, pod: str) -> list[str]:
        """The worker ids of a pod this plan acts on (the pod name when the pod is unknown)."""
        return self.pod_workers.get(pod, [pod])

    @property
    def scaled(self) -> bool:
        """True when the replica count changes."""
        return self.replicas != self.current


def initial_replicas(spec: WorkerPoolSpec) -> int:
    """Replicas of a freshly created Deployment."""
    if spec.autoscaling.enabled:
        return min(max(spec.replicas, spec.autoscaling.min_replicas), spec.autoscaling.max_replicas)
    return spec.replicas


def worker_views(pods: Sequence[PodView], heartbeats: Mapping[str, Heartbeat]) -> list[Worker]:
    """The pool's live pods joined with their workers' heartbeats (a pod with several worker processes
    sums their in-flight tasks).

    A pod counts as draining once it was asked to and each of its workers says so or already exited (no
    heartbeat left: a drained worker deregisters).
    """
    workers = []
    for pod in pods:
        if pod.terminating:
            continue
        beats = [heartbeats.get(worker_id) for worker_id in pod.worker_ids]
        workers.append(
            Worker(
                pod_name=pod.name,
                in_flight=sum(beat.in_flight for beat in beats if beat),
                pod_ready=pod.ready and pod.running,
                draining=pod.drain_requested and all(beat is None or beat.draining for beat in beats),
                created_at=pod.created_at,
            )
        )
    return workers


def split_drains(
    workers: Sequence[Worker], draining: Sequence[str], needed: int
) -> tuple[list[str], list[str]]:
    """Split the pods under drain into those a scale-down by ``needed`` pods still uses and those whose
    drain is called off.

    Without this, a drain the autoscaler changed its mind about would leave its worker idle for good.
    The kept ones are the furthest along (drained, then fewest tasks in flight), the order
    :func:`choose_workers_to_drain` uses, so repeated reconciles keep the same pods.
    """
    if needed >= len(draining):
        return sorted(draining), []
    wanted = set(draining)
    keep = choose_workers_to_drain([w for w in workers if w.pod_name in wanted], needed)
    return sorted(keep), sorted(wanted - set(keep))


def plan_pool(
    spec: WorkerPoolSpec,
    *,
    current: int,
    pods: Sequence[PodView],
    heartbeats: Mapping[str, Heartbeat],
    load: PoolLoad,
    last_scale_time: float | None,
    now: float,
) -> PoolPlan:
    """Decide replicas, drains, removals and stale pods for one reconcile of a pool."""
    live = [p for p in pods if not p.terminating]
    beats = {name: beat.at for name, beat in heartbeats.items()}
    pod_workers = {p.name: p.worker_ids for p in pods}
    # A running pod is stale when any of its workers is silent (jobqueue.scaling.stale_workers' rule).
    silent = {
        p.name: ids
        for p in live
        if p.running
        and not p.drain_requested
        and (
            ids := silent_workers(p.worker_ids, p.started_at, beats, now, spec.health.heartbeat_stale_seconds)
        )
    }
    stale = sorted(silent)
    healthy = [p for p in live if p.name not in stale]
    workers = worker_views(healthy, heartbeats)
    draining = sorted(p.name for p in healthy if p.drain_requested)

    decision: ScaleDecision | None = None
    if spec.autoscaling.enabled:
        policy = spec.autoscaling
        decision = desired_replicas(
            ready=load.ready,
            in_flight=load.in_flight,
            target_per_replica=policy.target_tasks_per_replica,
            min_replicas=policy.min_replicas,
            max_replicas=policy.max_replicas,
            current=current,
            last_scale_time=last_scale_time,
            now=now,
            cooldowns=Cooldowns(policy.scale_up_cooldown_seconds, policy.scale_down_cooldown_seconds),
            max_step=policy.max_step,
            rate_limit_capacity=load.rate_limit_capacity,
            activation_depth=policy.activation_depth,
        )
        target = decision.replicas
    else:
        target = spec.replicas

    keep, call_off = split_drains(workers, draining, max(current - target, 0))
    # Lower replicas only once every pod asked to drain has drained: they all carry the lowest deletion
    # cost, so the ReplicaSet must not be left to pick among drained and still-busy ones.
    drained = drained_workers(workers, keep)
    if keep and len(drained) == len(keep):
        return PoolPlan(
            max(current - len(drained), 0),
            current,
            decision,
            call_off_drain=call_off,
            remove=drained,
            stale=stale,
            draining=keep,
            pod_workers=pod_workers,
            silent=silent,
        )
    if target >= current:
        return PoolPlan(
            target,
            current,
            decision,
            call_off_drain=call_off,
            stale=stale,
            draining=keep,
            pod_workers=pod_workers,
            silent=silent,
        )
    candidates = [w for w in workers if w.pod_name not in call_off]
    chosen = choose_workers_to_drain(candidates, current - target)
    fresh = sorted(set(chosen) - set(keep))
    return PoolPlan(
        current,
        current,
        decision,
        request_drain=fresh,
        call_off_drain=call_off,
        stale=stale,
        draining=keep,
        pod_workers=pod_workers,
        silent=silent,
    )
