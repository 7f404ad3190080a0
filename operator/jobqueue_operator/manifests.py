"""Kubernetes manifests the operator owns, built as plain dicts from a WorkerPool's spec (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobqueue_operator.pod_template import (
    HEALTH_DIR,
    HEALTH_DIR_ENV,
    WORKER_CONTAINER,
    check_env,
    merge_pod_spec,
)
from jobqueue_operator.pool_plan import PROCESSES_ANNOTATION
from jobqueue_operator.spec import WorkerPoolSpec

GROUP = "jobqueue.dev"
VERSION = "v1alpha1"
POOL_LABEL = f"{GROUP}/pool"
# `kubectl logs` and `kubectl exec` pick the worker, not a sidecar, when no container is named.
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
# The worker must stop before the kubelet's SIGKILL: it gets the pod's grace period minus this margin
# to finish its in-flight tasks after SIGTERM.
SHUTDOWN_MARGIN_SECONDS = 5


@dataclass(frozen=True)
class Owner:
    """The WorkerPool that owns a manifest (deleting it deletes what it owns)."""

    name: str
    namespace: str
    uid: str


def pool_selector(pool_name: str) -> dict[str, str]:
    """Labels that select the pool's pods; also the scale subresource's status.selector."""
    return {POOL_LABEL: pool_name}


def selector_string(pool_name: str) -> str:
    """:func:`pool_selector` in label-selector syntax, for status.selector."""
    return ",".join(f"{key}={value}" for key, value in sorted(pool_selector(pool_name).items()))


def worker_args(spec: WorkerPoolSpec, log_format: str = "auto") -> list[str]:
    """Arguments of the worker container (the image's entry point is the `jobqueue` command); a
    ``log_format`` other than auto goes before the subcommand (a global option of `jobqueue`)."""
    grace = max(1, spec.termination_grace_period_seconds - SHUTDOWN_MARGIN_SECONDS)
    # Only when asked for: a pool of one process keeps the pod template it had, so upgrading the operator
    # rolls no pod.
    processes = ["--processes", str(spec.processes)] if spec.processes > 1 else []
    log = ["--log-format", log_format] if log_format != "auto" else []
    return [
        *log,
        "worker",
        "--app", spec.app,
        "--queues", ",".join(spec.queues),
        "--concurrency", str(spec.concurrency),
        "--pool", spec.pool_kind,
        "--grace", str(grace),
        *processes,
    ]  # fmt: skip


def pod_annotations(spec: WorkerPoolSpec) -> dict[str, str]:
    """The pod template's annotations: the user's, and the worker process count the operator joins the
    pod's heartbeats by (pool_plan.PodView; absent = one process, the pod template of before)."""
    annotations = {DEFAULT_CONTAINER_ANNOTATION: WORKER_CONTAINER, **spec.pod_template.metadata.annotations}
    if spec.processes > 1:
        annotations[PROCESSES_ANNOTATION] = str(spec.processes)
    return annotations


def worker_container(
    spec: WorkerPoolSpec, log_format: str = "auto", redis_password: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The worker container: its worker id is the pod name (``<pod>_<i>`` for each of ``--processes``
    N > 1), connection settings come from the Secret; ``redis_password`` (Secret name, key) adds
    JOBQUEUE_REDIS_PASSWORD read from that Secret (an external Redis whose URL carries no password)."""
    password_env = (
        [{"name": "JOBQUEUE_REDIS_PASSWORD",
          "valueFrom": {"secretKeyRef": {"name": redis_password[0], "key": redis_password[1]}}}]
        if redis_password is not None
        else []
    )  # fmt: skip
    container: dict[str, Any] = {
        "name": WORKER_CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "args": worker_args(spec, log_format),
        # The operator matches heartbeats to pods by this id.
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": HEALTH_DIR_ENV, "value": HEALTH_DIR},
            *password_env,
            *[dict(item) for item in spec.env],
        ],
        "envFrom": [{"secretRef": {"name": spec.connection_secret_name}}],
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    resources = {
        key: dict(value)
        for key, value in (("requests", spec.resources.requests), ("limits", spec.resources.limits))
        if value
    }
    if resources:
        container["resources"] = resources
    return container


def owner_reference(owner: Owner) -> dict[str, Any]:
    """The reference that makes ``owner`` the controller of an object (deleted with it)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkerPool",
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_disruption_budget(owner: Owner, spec: WorkerPoolSpec) -> dict[str, Any] | None:
    """The pool's PodDisruptionBudget, or None when spec.disruptionBudget is unset (then the operator
    deletes one it made earlier). Voluntary evictions (node drains) wait while it would be broken; the
    operator's own scale-down drains workers first and is not an eviction."""
    budget = spec.disruption_budget
    if budget is None:
        return None
    limits = {"minAvailable": budget.min_available, "maxUnavailable": budget.max_unavailable}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": {"app.kubernetes.io/managed-by": "jobqueue-operator", **pool_selector(owner.name)},
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "selector": {"matchLabels": pool_selector(owner.name)},
            **{key: value for key, value in limits.items() if value is not None},
        },
    }


def worker_deployment(
    owner: Owner,
    spec: WorkerPoolSpec,
    replicas: int,
    log_format: str = "auto",
    redis_password: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The Deployment of a WorkerPool, named like the pool and owned by it.

    ``replicas`` is passed separately from the spec: the autoscaler or the drain logic decides it.
    The pod template is merged around the worker container (pod_template.merge_pod_spec); raises
    pod_template.InvalidPodTemplate when it cannot be merged whole.
    """
    check_env(spec.env, "spec.env")
    labels = {
        "app.kubernetes.io/name": "jobqueue-worker",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/managed-by": "jobqueue-operator",
        **pool_selector(owner.name),
    }
    pod_spec = merge_pod_spec(
        spec.pod_template.spec,
        worker_container(spec, log_format, redis_password),
        heartbeat_stale_seconds=spec.health.heartbeat_stale_seconds,
    )
    pod_spec["terminationGracePeriodSeconds"] = spec.termination_grace_period_seconds
    # Pod Security "restricted" at pod level for every container (sidecars too), unless the template says
    # otherwise in a way the pod policy (pod_policy.py) allowed.
    pod_spec["securityContext"] = {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        **dict(spec.pod_template.spec.get("securityContext") or {}),
    }
    # Service link variables (e.g. JOBQUEUE_API_PORT=tcp://... from a release's jobqueue-api Service)
    # share the worker's settings prefix; the worker needs none, so none may shadow a setting.
    pod_spec.setdefault("enableServiceLinks", False)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": owner.name,
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": pool_selector(owner.name)},
            # Never below the wanted capacity during a rollout: new workers start before old ones drain.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "template": {
                "metadata": {
                    "labels": {**spec.pod_template.metadata.labels, **labels},
                    "annotations": pod_annotations(spec),
                },
                "spec": pod_spec,
            },
        },
    }
