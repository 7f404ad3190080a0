"""The Kubernetes calls of the operator beyond what kopf does for it: the owned Deployment and the pool's
pods. Thin wrappers over the official client; errors stay ``ApiException`` for the handlers to map."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from jobqueue_operator.pool_plan import DRAIN_ANNOTATION, PROCESSES_ANNOTATION, PodView

NOT_FOUND = 404


def connect() -> k8s.ApiClient:
    """An API client from the pod's service account, else from the kubeconfig (KUBECONFIG)."""
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
        return k8s.ApiClient()
    except k8s_config.ConfigException:
        api: k8s.ApiClient = k8s_config.new_client_from_config()  # type: ignore[no-untyped-call]
        return api


def _seconds(moment: dt.datetime | None) -> float:
    return moment.timestamp() if moment else 0.0


def pod_view(pod: Any) -> PodView:
    """The facts of a pod the pool plan needs."""
    conditions = {c.type: c.status for c in (pod.status.conditions or [])}
    created = _seconds(pod.metadata.creation_timestamp)
    annotations = pod.metadata.annotations or {}
    return PodView(
        name=pod.metadata.name,
        running=pod.status.phase == "Running",
        ready=conditions.get("Ready") == "True",
        started_at=_seconds(pod.status.start_time) or created,
        created_at=created,
        drain_requested=DRAIN_ANNOTATION in annotations,
        terminating=pod.metadata.deletion_timestamp is not None,
        processes=_processes(annotations.get(PROCESSES_ANNOTATION)),
    )


def _processes(value: str | None) -> int:
    """The pod's worker process count; a pod from before the annotation existed runs one."""
    try:
        return max(1, int(value)) if value else 1
    except ValueError:
        return 1


class Kube:
    """Deployment and pod operations in one namespace-aware object."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self.apps = k8s.AppsV1Api(api)
        self.core = k8s.CoreV1Api(api)
        self.policy = k8s.PolicyV1Api(api)

    def read_deployment(self, namespace: str, name: str) -> Any | None:
        """The Deployment, or None when it does not exist."""
        try:
            return self.apps.read_namespaced_deployment(name, namespace)
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise

    def apply_deployment(self, manifest: dict[str, Any]) -> None:
        """Create the Deployment, or patch an existing one to the manifest except its replicas.

        Replicas of an existing Deployment change only through :meth:`scale_deployment` (the reconcile
        timer's decision): a spec-change handler running beside the timer would otherwise write back the
        count it read before the timer scaled, undoing the scale.
        """
        meta = manifest["metadata"]
        try:
            # The client serializes plain dicts as they are; manifests.py builds dicts to stay pure.
            self.apps.create_namespaced_deployment(meta["namespace"], manifest)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status != 409:
                raise
            spec = {key: value for key, value in manifest["spec"].items() if key != "replicas"}
            self.apps.patch_namespaced_deployment(meta["name"], meta["namespace"], {**manifest, "spec": spec})

    def apply_disruption_budget(self, manifest: dict[str, Any]) -> None:
        """Create the PodDisruptionBudget, or patch the existing one to the manifest."""
        meta = manifest["metadata"]
        try:
            self.policy.create_namespaced_pod_disruption_budget(meta["namespace"], manifest)  # type: ignore[arg-type]
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.policy.patch_namespaced_pod_disruption_budget(meta["name"], meta["namespace"], manifest)

    def delete_disruption_budget(self, namespace: str, name: str) -> None:
        """Delete the PodDisruptionBudget (none there is fine: the pool never had one)."""
        try:
            self.policy.delete_namespaced_pod_disruption_budget(name, namespace)
        except ApiException as exc:
            if exc.status != NOT_FOUND:
                raise

    def scale_deployment(self, namespace: str, name: str, replicas: int) -> None:
        """Set the Deployment's replicas through its scale subresource."""
        self.apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}})

    def list_pods(self, namespace: str, selector: str) -> list[PodView]:
        """The pods matching ``selector``."""
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return [pod_view(p) for p in pods]

    def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        """Merge annotations into a pod, None removing one (a vanished pod is ignored: nothing left to
        mark)."""
        try:
            self.core.patch_namespaced_pod(name, namespace, {"metadata": {"annotations": annotations}})
        except ApiException as exc:
            if exc.status != NOT_FOUND:
                raise

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete a pod (already gone is fine)."""
        try:
            self.core.delete_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status != NOT_FOUND:
                raise
