"""Pools on Kubernetes: the API writes WorkerPool resources (the operator stays the only writer of
Deployments) with its own ServiceAccount, which the chart grants exactly get/list/create/patch/delete on
workerpools (and list on events) in its namespace.

Errors of the Kubernetes API are translated here: 404 -> PoolNotFound, 409 AlreadyExists -> PoolExists,
422 (schema or CEL) -> ValidationError naming the field in the REST API's spelling (spec.autoscaling.
minReplicas -> autoscaling.min_replicas), anything else -> BrokerUnavailable-like JobQueueError.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from jobqueue.errors import ConfigurationError, PoolExists, PoolNotFound, ValidationError
from jobqueue.pools import PoolAutoscaling, PoolEvent, PoolSpec, validate_pool_queues
from jobqueue_api.errors import ApiError
from jobqueue_api.pool_backends import ClusterOptions

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "jobqueue.dev", "v1alpha1", "workerpools"
MANAGED_BY = {"app.kubernetes.io/managed-by": "jobqueue-api"}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_FIELD_NAMES = {"targetTasksPerReplica": "target_tasks_per_replica", "poolKind": "pool_kind"}


def rest_field(kube_field: str) -> str:
    """A Kubernetes field path in REST spelling: spec.autoscaling.minReplicas -> autoscaling.min_replicas."""
    path = kube_field.removeprefix("spec.").replace("[", ".").replace("]", "")
    return ".".join(_FIELD_NAMES.get(part, _snake(part)) for part in path.split(".") if part)


def to_resource(spec: PoolSpec, options: ClusterOptions) -> dict[str, Any]:
    """The WorkerPool resource of a pool (pure)."""
    body: dict[str, Any] = {
        "queues": list(spec.queues),
        "concurrency": spec.concurrency,
        "replicas": spec.replicas,
        "autoscaling": autoscaling_resource(spec.autoscaling),
    }
    if options.image is not None:
        body["image"] = options.image
    if options.app is not None:
        body["app"] = options.app
    if options.processes is not None:
        body["processes"] = options.processes
    if options.pool_kind is not None:
        body["poolKind"] = options.pool_kind
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkerPool",
        "metadata": {"name": spec.name, "labels": dict(MANAGED_BY)},
        "spec": body,
    }


def autoscaling_resource(auto: PoolAutoscaling) -> dict[str, Any]:
    """The autoscaling block of a WorkerPool spec (other fields keep the CRD's defaults)."""
    return {
        "enabled": auto.enabled,
        "minReplicas": auto.min_replicas,
        "maxReplicas": auto.max_replicas,
        "targetTasksPerReplica": auto.target_tasks_per_replica,
    }


def view(resource: dict[str, Any]) -> dict[str, Any]:
    """The REST view of a WorkerPool resource (pure)."""
    meta, spec, status = resource["metadata"], resource.get("spec", {}), resource.get("status") or {}
    auto = spec.get("autoscaling") or {}
    enabled = bool(auto.get("enabled", False))
    return {
        "name": meta["name"],
        "queues": list(spec.get("queues", [])),
        "concurrency": spec.get("concurrency"),
        "replicas": spec.get("replicas"),
        "autoscaling": {
            "enabled": enabled,
            "min_replicas": auto.get("minReplicas"),
            "max_replicas": auto.get("maxReplicas"),
            "target_tasks_per_replica": auto.get("targetTasksPerReplica"),
        },
        "generation": meta.get("generation"),
        "uid": meta.get("uid"),
        "image": spec.get("image"),
        "app": spec.get("app"),
        "processes": spec.get("processes"),
        "pool_kind": spec.get("poolKind"),
        "backend": "kubernetes",
        "status": {
            "desired_replicas": status.get("desiredReplicas", None if enabled else spec.get("replicas")),
            "current_replicas": status.get("replicas", 0),
            "ready_replicas": status.get("readyReplicas", 0),
            "stale_workers": status.get("staleWorkers", 0),
            "observed_generation": status.get("observedGeneration"),
            "queue_ready": status.get("queueDepth"),
            "queue_in_flight": status.get("inFlight"),
            "conditions": status.get("conditions", []),
        },
    }


def translate(exc: ApiException, name: str) -> Exception:
    """A Kubernetes API error as a jobqueue error (the routes map those to HTTP), or a 503 when the fault
    is the cluster's or the deployment's (RBAC missing, CRD not installed, API server failing)."""
    if exc.status == 404 and name:
        return PoolNotFound(name)
    if exc.status == 409:
        return PoolExists(name)
    if exc.status == 422:
        try:
            details = json.loads(exc.body or "{}")
            causes = (details.get("details") or {}).get("causes") or []
            cause = causes[0] if causes else {}
            return ValidationError(
                rest_field(str(cause.get("field", "spec"))) or "body",
                str(cause.get("message") or details.get("message") or "rejected by Kubernetes"),
            )
        except (ValueError, AttributeError):
            return ValidationError("body", "rejected by Kubernetes")
    # Not the caller's fault: logged here with the reason, a 503 for the client to retry.
    log.error("Kubernetes API answered %s %s for worker pool %r", exc.status, exc.reason, name)
    return ApiError(
        503,
        "unavailable",
        f"the Kubernetes API answered {exc.status} {exc.reason} (check the API's RBAC and the CRDs)",
        headers={"Retry-After": "10"},
    )


class KubernetesPoolBackend:
    """Pools as WorkerPool resources in one namespace."""

    name = "kubernetes"

    def __init__(self, api: k8s.ApiClient, namespace: str, default_image: str | None = None) -> None:
        self.objects = k8s.CustomObjectsApi(api)
        self.core = k8s.CoreV1Api(api)
        self.namespace = namespace
        self.default_image = default_image

    async def _call(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ApiException as exc:
            raise translate(exc, name) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            log.warning("Kubernetes API unreachable: %s", exc)
            raise ApiError(
                503, "unavailable", "the Kubernetes API is unavailable", headers={"Retry-After": "5"}
            ) from exc

    async def _get(self, name: str) -> dict[str, Any]:
        ns = self.namespace
        result: dict[str, Any] = await self._call(
            name, self.objects.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name
        )
        return result

    async def _patch(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        ns, body = self.namespace, {"spec": spec}
        result: dict[str, Any] = await self._call(
            name, self.objects.patch_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name, body
        )
        return view(result)

    async def list_pools(self) -> list[dict[str, Any]]:
        """Every WorkerPool of the namespace (made here or with kubectl)."""
        ns = self.namespace
        result = await self._call("", self.objects.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL)
        return [view(item) for item in sorted(result["items"], key=lambda i: i["metadata"]["name"])]

    async def get(self, name: str) -> dict[str, Any]:
        """One WorkerPool."""
        return view(await self._get(name))

    async def create(self, spec: PoolSpec, options: ClusterOptions) -> dict[str, Any]:
        """Create the WorkerPool (one API call: nothing is half-created)."""
        if options.image is None and self.default_image:
            options = ClusterOptions(self.default_image, options.app, options.processes, options.pool_kind)
        if options.image is None:
            raise ValidationError("image", "required on the kubernetes backend (no default image configured)")
        if options.app is None:
            raise ValidationError("app", "required on the kubernetes backend ('package.module:app')")
        ns, body = self.namespace, to_resource(spec, options)
        created = await self._call(
            spec.name, self.objects.create_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, body
        )
        return view(created)

    async def patch(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch queues / concurrency / replicas (replicas: autoscaling off, the shared rule)."""
        spec: dict[str, Any] = {
            k: v for k, v in changes.items() if k in ("queues", "concurrency", "replicas")
        }
        if "queues" in spec:
            validate_pool_queues(spec["queues"])  # the same rule and field names as on create
        if "replicas" in changes:
            spec["autoscaling"] = {"enabled": False}
        return await self._patch(name, spec)

    async def scale(self, name: str, replicas: int) -> dict[str, Any]:
        """Hold exactly ``replicas``; autoscaling off."""
        return await self._patch(name, {"replicas": replicas, "autoscaling": {"enabled": False}})

    async def set_autoscaling(self, name: str, autoscaling: PoolAutoscaling) -> dict[str, Any]:
        """Replace the autoscaling settings."""
        return await self._patch(name, {"autoscaling": autoscaling_resource(autoscaling)})

    async def delete(self, name: str) -> None:
        """Delete the WorkerPool. The garbage collector then removes its Deployment and pods, and each
        worker finishes its running tasks on SIGTERM within the pod's grace period (no operator step:
        tests/integration/operator/test_api_pool_delete.py)."""
        ns = self.namespace
        await self._call(name, self.objects.delete_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, name)

    async def events(self, name: str) -> list[PoolEvent]:
        """The WorkerPool's Kubernetes events, newest first (404 when the pool does not exist)."""
        await self._get(name)
        selector = f"involvedObject.kind=WorkerPool,involvedObject.name={name}"
        result = await self._call(
            name, self.core.list_namespaced_event, self.namespace, field_selector=selector
        )
        events = []
        for item in result.items:
            when = item.last_timestamp or item.event_time or item.metadata.creation_timestamp
            events.append(PoolEvent(when.timestamp() if when else 0.0, item.reason or "", item.message or ""))
        return sorted(events, key=lambda e: e.at, reverse=True)


def kube_api_client() -> k8s.ApiClient:
    """A client with the pod's ServiceAccount in a cluster, else the kubeconfig (a developer's machine).
    Reads configuration files only; the first request opens the connection."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except ConfigException:
        try:
            k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except (ConfigException, OSError) as exc:
            raise ConfigurationError(f"pools backend 'kubernetes': no cluster credentials: {exc}") from exc
    return k8s.ApiClient(configuration)
