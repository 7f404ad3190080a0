"""WorkerPool handlers: the owned Deployment, the built-in autoscaler with drain-first scale-down, the
health checks (stale heartbeats, orphaned leases) and the status. Decisions are in pool_plan."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

import kopf
import pydantic

from jobqueue_operator.conditions import merge_conditions, ready
from jobqueue_operator.context import GROUP, VERSION, OperatorContext, namespace_of, reconciling
from jobqueue_operator.decisions import (
    POD_DELETION_COST_ANNOTATION,
    deletion_cost_annotations,
    orphaned_workers,
)
from jobqueue_operator.manifests import Owner, pod_disruption_budget, selector_string, worker_deployment
from jobqueue_operator.metrics import PoolReplicas
from jobqueue_operator.pod_policy import pod_template_violations
from jobqueue_operator.pod_template import InvalidPodTemplate
from jobqueue_operator.pool_plan import DRAIN_ANNOTATION, Heartbeat, PoolPlan, initial_replicas, plan_pool
from jobqueue_operator.pool_status import parse_time, pool_status
from jobqueue_operator.queue_status import invalid_status
from jobqueue_operator.redis_state import lease_holders, read_heartbeats, read_pool_load
from jobqueue_operator.spec import WorkerPoolSpec

KIND, PLURAL = "WorkerPool", "workerpools"


def policy_violations(ctx: OperatorContext, spec: WorkerPoolSpec) -> list[str]:
    """What the chart's pod policy refuses in the pool's podTemplate and connection Secret."""
    policy = ctx.settings.pod_policy()
    return pod_template_violations(spec.pod_template.spec, spec.connection_secret_name, policy)


def ensure_deployment(ctx: OperatorContext, owner: Owner, spec: WorkerPoolSpec) -> None:
    """Create or update the pool's Deployment, keeping the replica count the autoscaler last set, and its
    optional PodDisruptionBudget."""
    existing = ctx.kube.read_deployment(owner.namespace, owner.name)
    replicas = existing.spec.replicas if existing is not None else initial_replicas(spec)
    # Both manifests are built before either is applied: an invalid pod template changes nothing.
    settings = ctx.settings
    deployment = worker_deployment(
        owner, spec, replicas, settings.worker_log_format, settings.worker_redis_password()
    )
    budget = pod_disruption_budget(owner, spec)
    ctx.kube.apply_deployment(deployment)
    if budget is not None:
        ctx.kube.apply_disruption_budget(budget)
    else:
        ctx.kube.delete_disruption_budget(owner.namespace, owner.name)


def count_recovered(ctx: OperatorContext, by_queue: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Count recovered leases per queue in the metrics; returns the totals (for the Event message)."""
    totals = {"requeued": 0, "dead_lettered": 0}
    for queue, counts in by_queue.items():
        ctx.metrics.leases_recovered.labels(queue).inc(counts["requeued"] + counts["dead_lettered"])
        for key in totals:
            totals[key] += counts[key]
    return totals


def record_replicas(
    ctx: OperatorContext, owner: Owner, spec: WorkerPoolSpec, plan: PoolPlan, deployment: Any
) -> None:
    """The pool's replica gauges: what the autoscaler wants, what the Deployment has, and the bounds; and
    its event counters created at 0, so the first stale pod or recovered lease is an increase() that
    the dashboard and alerts see (a series that appears at 1 has no increase to show)."""
    ctx.metrics.stale_pods_deleted.labels(owner.namespace, owner.name)
    for queue in spec.queues:
        ctx.metrics.leases_recovered.labels(queue)
    scaling = spec.autoscaling
    ctx.metrics.pool_replicas.set(
        owner.namespace,
        owner.name,
        PoolReplicas(
            # The same figure as .status.desiredReplicas.
            desired=plan.decision.replicas if plan.decision is not None else plan.replicas,
            current=int(deployment.status.replicas or 0),
            ready=int(deployment.status.ready_replicas or 0),
            min=scaling.min_replicas if scaling.enabled else None,
            max=scaling.max_replicas if scaling.enabled else None,
        ),
    )


def apply_plan(ctx: OperatorContext, owner: Owner, spec: WorkerPoolSpec, plan: PoolPlan, body: Any) -> None:
    """Carry out a pool plan: delete stale pods, start drains, scale; each action is an Event."""
    ns, name, queues = owner.namespace, owner.name, list(spec.queues)
    for pod in plan.stale:
        ctx.kube.delete_pod(ns, pod)
        # Its silent workers are known dead or hung: their leases go back now instead of when they expire.
        # Live siblings of a multi-process pod drain on the pod's SIGTERM like any deleted pod's workers.
        recovered = {"requeued": 0, "dead_lettered": 0}
        for worker in plan.silent.get(pod, [pod]):
            by_queue = ctx.client.recover_expired_leases_by_queue(queues, worker_id=worker)
            for key, value in count_recovered(ctx, by_queue).items():
                recovered[key] += value
        ctx.metrics.stale_pods_deleted.labels(ns, name).inc()
        kopf.warn(
            body, reason="StaleWorker", message=f"deleted pod {pod} (heartbeat stale); recovered {recovered}"
        )
    costs = deletion_cost_annotations(plan.request_drain)
    for pod in plan.request_drain:
        ctx.kube.annotate_pod(ns, pod, {**costs[pod], DRAIN_ANNOTATION: str(int(time.time()))})
        # exit=False: the workers idle until their pod is deleted; exiting would only get them restarted.
        for worker in plan.workers_of(pod):
            ctx.client.request_drain(worker, exit=False)
        kopf.info(body, reason="DrainRequested", message=f"worker {pod} asked to drain before scale-down")
    for pod in plan.call_off_drain:
        # Redis first: should the annotation patch then fail, the pod still reads as draining and the
        # next reconcile calls the drain off again (both steps are idempotent).
        for worker in plan.workers_of(pod):
            ctx.client.cancel_drain(worker)
        ctx.kube.annotate_pod(ns, pod, dict.fromkeys((POD_DELETION_COST_ANNOTATION, DRAIN_ANNOTATION)))
        kopf.info(body, reason="DrainCalledOff", message=f"worker {pod} fetches again: scale-down not needed")
    if plan.scaled:
        ctx.kube.scale_deployment(ns, name, plan.replicas)
        direction = "up" if plan.replicas > plan.current else "down"
        ctx.metrics.scale_events.labels(ns, name, direction).inc()
        removed = f" (drained: {', '.join(plan.remove)})" if plan.remove else ""
        kopf.info(body, reason="Scaled", message=f"replicas {plan.current} -> {plan.replicas}{removed}")


def recover_orphans(
    ctx: OperatorContext,
    owner: Owner,
    spec: WorkerPoolSpec,
    *,
    pods: list[str],
    heartbeats: Mapping[str, Heartbeat],
    body: Any,
) -> None:
    """Recover the leases of workers that hold some but have neither a pod nor a recent heartbeat."""
    queues = list(spec.queues)
    beats = {worker: beat.at for worker, beat in heartbeats.items()}
    orphans = orphaned_workers(
        lease_holders(ctx.client, queues), beats, pods, time.time(), spec.health.lease_orphan_seconds
    )
    for worker in orphans:
        recovered = count_recovered(ctx, ctx.client.recover_expired_leases_by_queue(queues, worker_id=worker))
        kopf.info(
            body,
            reason="OrphanedLeases",
            message=f"recovered leases of vanished worker {worker}: {recovered}",
        )


def register_workerpool(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """Register the WorkerPool handlers on ``registry``."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="apply-deployment", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="apply-deployment", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", id="apply-deployment", registry=registry)
    def apply_deployment(
        *,
        name: str,
        namespace: str | None,
        uid: str,
        spec: Any,
        body: Any,
        meta: Any,
        status: Any,
        patch: Any,
        **_: Any,
    ) -> None:
        generation = int(meta.get("generation") or 0)
        with reconciling(ctx, KIND, "deployment"):
            try:
                parsed = WorkerPoolSpec.model_validate(dict(spec))
                violations = policy_violations(ctx, parsed)
                if violations:
                    # Permanent until the spec (or the chart's policy) changes: no Deployment is written.
                    why = "refused by the pod policy: " + "; ".join(violations)
                    conditions = merge_conditions(
                        status.get("conditions"), [ready(False, "PodPolicyViolation", why)], generation,
                        dt.datetime.now(dt.UTC),
                    )  # fmt: skip
                    patch.status.update({"observedGeneration": generation, "conditions": conditions})
                    kopf.warn(body, reason="PodPolicyViolation", message=why)
                    raise kopf.PermanentError(why)
                # Built before anything is applied: a template that cannot be merged whole changes nothing.
                ensure_deployment(ctx, Owner(name, namespace_of(namespace), uid), parsed)
            except (pydantic.ValidationError, InvalidPodTemplate) as exc:
                now = dt.datetime.now(dt.UTC)
                patch.status.update(invalid_status(status.get("conditions"), generation, now, str(exc)))
                kopf.warn(body, reason="InvalidSpec", message=str(exc))
                raise
            kopf.info(body, reason="DeploymentApplied", message=f"deployment {name} applied")

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=ctx.settings.interval_seconds,
        # An unexpected exception is retried after this delay, not kopf's default of 60 s (the timer
        # itself survives either way: kopf logs the error and keeps the timer).
        backoff=ctx.settings.retry_delay_seconds,
        id="reconcile-pool",
        registry=registry,
    )
    def reconcile_pool(
        *,
        name: str,
        namespace: str | None,
        uid: str,
        spec: Any,
        body: Any,
        meta: Any,
        status: Any,
        patch: Any,
        **_: Any,
    ) -> None:
        try:
            parsed = WorkerPoolSpec.model_validate(dict(spec))
        except pydantic.ValidationError:
            return  # reported by apply_deployment as a permanent error and a condition
        if policy_violations(ctx, parsed):
            return  # likewise: reported by apply_deployment, and never given a Deployment
        owner = Owner(name, namespace_of(namespace), uid)
        with reconciling(ctx, KIND, "reconcile"):
            deployment = ctx.kube.read_deployment(owner.namespace, name)
            if deployment is None:
                # An invalid template is reported by apply_deployment as a permanent error and a condition.
                with contextlib.suppress(InvalidPodTemplate):
                    ensure_deployment(ctx, owner, parsed)
                return
            pods = ctx.kube.list_pods(owner.namespace, selector_string(name))
            heartbeats = read_heartbeats(ctx.client)
            # What the queues' rate limits let start before the autoscaler could add workers again.
            horizon = max(ctx.settings.interval_seconds, parsed.autoscaling.scale_up_cooldown_seconds)
            load = read_pool_load(ctx.client, parsed.queues, horizon)
            plan = plan_pool(
                parsed,
                current=int(deployment.spec.replicas or 0),
                pods=pods,
                heartbeats=heartbeats,
                load=load,
                last_scale_time=parse_time(status.get("lastScaleTime")),
                now=time.time(),
            )
            apply_plan(ctx, owner, parsed, plan, body)
            record_replicas(ctx, owner, parsed, plan, deployment)
            recover_orphans(ctx, owner, parsed, pods=[p.name for p in pods], heartbeats=heartbeats, body=body)
            patch.status.update(
                pool_status(
                    plan=plan,
                    load=load,
                    replicas=int(deployment.status.replicas or 0),
                    ready_replicas=int(deployment.status.ready_replicas or 0),
                    selector=selector_string(name),
                    last_scale_time=status.get("lastScaleTime"),
                    conditions=status.get("conditions"),
                    generation=int(meta.get("generation") or 0),
                    now=dt.datetime.now(dt.UTC),
                )
            )
