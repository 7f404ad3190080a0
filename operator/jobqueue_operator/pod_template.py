"""A WorkerPool's ``podTemplate`` merged around the operator-owned worker container (pure).

The user's template is a full PodTemplateSpec: sidecars, initContainers, volumes and scheduling fields are
theirs and kept as written. A container named ``worker`` in it is not a second container but additions to
the operator's worker (mounts, envFrom, ports, lifecycle, probes, resources); the operator keeps the
worker's image, command, args, security context and identity env, because the worker id must be the pod
name and the image is ``spec.image``. Anything the merge cannot honour is refused as a whole with
:class:`InvalidPodTemplate` (the handler reports it on the WorkerPool's conditions), never half-applied.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from jobqueue.errors import ValidationError

WORKER_CONTAINER = "worker"
# The operator's own volumes; the CRD refuses user volumes with this prefix too (a CEL rule).
RESERVED_VOLUME_PREFIX = "jobqueue-"
TMP_VOLUME = "jobqueue-tmp"
TMP_PATH = "/tmp"  # noqa: S108 (a pod-private emptyDir, not a shared host directory)
# Where each worker process touches its liveness file (one per worker id, see jobqueue.worker.health).
HEALTH_DIR = "/tmp/jobqueue-health"  # noqa: S108
HEALTH_DIR_ENV = "JOBQUEUE_HEALTH_DIR"
# Env the worker's identity and liveness depend on: the operator matches heartbeats to pods by POD_NAME.
IDENTITY_ENV = frozenset({"POD_NAME", "JOBQUEUE_POD_NAME", HEALTH_DIR_ENV})
# What a template's `worker` container may add to the operator's worker container.
MERGED_WORKER_FIELDS = frozenset(
    {"name", "volumeMounts", "envFrom", "env", "ports", "lifecycle", "livenessProbe", "readinessProbe",
     "startupProbe", "resources", "workingDir"}
)  # fmt: skip
# Pod-level fields the operator sets itself (from spec.terminationGracePeriodSeconds, the merge above).
OPERATOR_POD_FIELDS = frozenset({"containers", "initContainers", "volumes", "terminationGracePeriodSeconds"})


class InvalidPodTemplate(ValidationError):
    """spec.podTemplate cannot be merged as written; ``field`` names the offending path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field if field.startswith("spec.env") else f"spec.podTemplate.{field}", message)


def _named(items: Iterable[Mapping[str, Any]], field: str) -> list[dict[str, Any]]:
    """Copies of a list of named objects, refusing a missing or repeated name."""
    seen: set[str] = set()
    copied = []
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InvalidPodTemplate(f"{field}[{index}].name", "every entry needs a name")
        if name in seen:
            raise InvalidPodTemplate(f"{field}[{name}]", "name used twice")
        seen.add(name)
        copied.append(copy.deepcopy(dict(item)))
    return copied


def check_env(env: Iterable[Mapping[str, Any]], field: str) -> None:
    """Refuse env entries that would override the worker's identity or liveness settings."""
    for item in env:
        if item.get("name") in IDENTITY_ENV:
            raise InvalidPodTemplate(
                f"{field}[{item.get('name')}]", "is set by the operator (the worker's identity and liveness)"
            )


def liveness_probe(heartbeat_stale_seconds: int) -> dict[str, Any]:
    """The default worker liveness probe: `jobqueue worker-health` reads the age of the files the worker
    processes touch on every heartbeat loop, so a wedged or SIGSTOPped worker is restarted by the kubelet
    even while the operator is down. It never talks to Redis: a Redis outage must not restart every worker
    of the cluster at once."""
    stale = max(1, heartbeat_stale_seconds)
    return {
        "exec": {"command": ["jobqueue", "worker-health", "--max-age", str(stale)]},
        # The worker touches its file before it waits for Redis, but importing the app comes first.
        "initialDelaySeconds": stale,
        "periodSeconds": 10,
        "timeoutSeconds": 10,
        "failureThreshold": 3,
    }


def merge_worker(operator_worker: Mapping[str, Any], template_worker: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's worker container with the template's `worker` container's additions."""
    refused = sorted(set(template_worker) - MERGED_WORKER_FIELDS)
    if refused:
        allowed = ", ".join(sorted(MERGED_WORKER_FIELDS - {"name"}))
        raise InvalidPodTemplate(
            f"spec.containers[worker].{refused[0]}",
            "the operator owns this field of the worker container (image: spec.image, args: spec.app, "
            f"spec.queues...); a worker container may set only {allowed}",
        )
    merged = copy.deepcopy(dict(operator_worker))
    extra_env = [dict(item) for item in template_worker.get("env") or []]
    check_env(extra_env, "spec.containers[worker].env")
    merged["env"] = [*merged.get("env", []), *extra_env]
    # The connection Secret goes last: for a key in both, the later envFrom source wins.
    merged["envFrom"] = [*(dict(i) for i in template_worker.get("envFrom") or []), *merged.get("envFrom", [])]
    resources = copy.deepcopy(dict(template_worker.get("resources") or {}))
    for kind, values in (operator_worker.get("resources") or {}).items():
        resources[kind] = {**resources.get(kind, {}), **values}  # spec.resources is the more specific
    if resources:
        merged["resources"] = resources
    for field in ("ports", "lifecycle", "livenessProbe", "readinessProbe", "startupProbe", "workingDir"):
        if field in template_worker:
            merged[field] = copy.deepcopy(template_worker[field])
    merged["volumeMounts"] = [copy.deepcopy(dict(m)) for m in template_worker.get("volumeMounts") or []]
    return merged


def merge_pod_spec(
    template: Mapping[str, Any], operator_worker: Mapping[str, Any], *, heartbeat_stale_seconds: int
) -> dict[str, Any]:
    """The pod spec of a WorkerPool: the user's template with the operator's worker container first.

    Raises :class:`InvalidPodTemplate` for a template the operator cannot honour whole.
    """
    pod = {key: copy.deepcopy(value) for key, value in template.items() if key not in OPERATOR_POD_FIELDS}
    containers = _named(template.get("containers") or [], "spec.containers")
    init_containers = _named(template.get("initContainers") or [], "spec.initContainers")
    volumes = _named(template.get("volumes") or [], "spec.volumes")
    clash = {c["name"] for c in containers} & {c["name"] for c in init_containers}
    if clash or any(c["name"] == WORKER_CONTAINER for c in init_containers):
        name = min(clash or {WORKER_CONTAINER})
        raise InvalidPodTemplate(f"spec.initContainers[{name}]", "container names must be unique in the pod")
    for volume in volumes:
        if volume["name"].startswith(RESERVED_VOLUME_PREFIX):
            raise InvalidPodTemplate(
                f"spec.volumes[{volume['name']}]",
                f"names starting with {RESERVED_VOLUME_PREFIX} are the operator's",
            )
    template_worker = next(
        (c for c in containers if c["name"] == WORKER_CONTAINER), {"name": WORKER_CONTAINER}
    )
    worker = merge_worker(operator_worker, template_worker)
    worker.setdefault("livenessProbe", liveness_probe(heartbeat_stale_seconds))
    mounts = worker["volumeMounts"]
    # The root filesystem stays read-only; tasks still get a writable /tmp (tempfile, caches) unless the
    # template mounts something of its own there.
    if not any(m.get("mountPath", "").rstrip("/") == TMP_PATH for m in mounts):
        mounts.append({"name": TMP_VOLUME, "mountPath": TMP_PATH})
        volumes.append({"name": TMP_VOLUME, "emptyDir": {}})
    known = {v["name"] for v in volumes}
    for mount in mounts:
        if mount.get("name") not in known:
            raise InvalidPodTemplate(
                f"spec.containers[worker].volumeMounts[{mount.get('name')}]",
                "names no volume of spec.volumes",
            )
    pod["containers"] = [worker, *(c for c in containers if c["name"] != WORKER_CONTAINER)]
    if init_containers:
        pod["initContainers"] = init_containers
    pod["volumes"] = volumes
    return pod
