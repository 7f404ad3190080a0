"""Helpers of the operator end-to-end tests: create custom resources and read them back."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s_client

GROUP, VERSION = "jobqueue.dev", "v1alpha1"


def worker_pool(name: str, queue: str, **spec: Any) -> dict[str, Any]:
    """A WorkerPool of the operator tests: thread pool, 2 slots, the test app; ``spec`` adds or overrides.
    kwok never pulls images: the pod runner runs the worker from this checkout instead."""
    return {
        "kind": "WorkerPool",
        "metadata": {"name": name},
        "spec": {
            "queues": [queue],
            "image": "example.invalid/jobqueue-worker:test",
            "app": "jq_test_app:app",
            "concurrency": 2,
            "poolKind": "thread",
            **spec,
        },
    }


def create_cr(api: k8s_client.ApiClient, namespace: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    body = {"apiVersion": f"{GROUP}/{VERSION}", **body}
    created = k8s_client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, body
    )
    assert isinstance(created, dict)
    return created


def get_cr(api: k8s_client.ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    obj = k8s_client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, name
    )
    assert isinstance(obj, dict)
    return obj


def patch_spec(
    api: k8s_client.ApiClient, namespace: str, plural: str, name: str, spec: dict[str, Any]
) -> None:
    k8s_client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, name, {"spec": spec}, _content_type="application/merge-patch+json"
    )


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c["type"] == kind:
            return dict(c)
    return None


def events_for(api: k8s_client.ApiClient, namespace: str, name: str) -> list[str]:
    """Reasons of the Events recorded on an object."""
    events = (
        k8s_client.CoreV1Api(api)
        .list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
        .items
    )
    return [e.reason for e in events]
