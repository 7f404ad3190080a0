"""/api/v1/worker-pools on the "kubernetes" backend, against the real test control plane, with the API's
own least-privilege ServiceAccount: pools become WorkerPool resources; schema and CEL errors of the API
server come back as 422 naming the field; nothing is half-created."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from jobqueue import Client
from jobqueue.errors import ValidationError
from jobqueue.pools import PoolSpec
from jobqueue_api.pool_backends import ClusterOptions
from jobqueue_api.pool_kube import KubernetesPoolBackend
from k8s.control_plane import wait_until

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("jobqueue_crds")]
ADMIN = {"Authorization": "Bearer a"}
READ = {"Authorization": "Bearer r"}
BASE = "/api/v1/worker-pools"
POOL = {"name": "emails", "queues": ["emails"], "concurrency": 2, "replicas": 1, "app": "tasks:app"}
GROUP, VERSION, PLURAL = "jobqueue.dev", "v1alpha1", "workerpools"


def pools(kube_api: k8s_client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    objects = k8s_client.CustomObjectsApi(kube_api)
    items: list[dict[str, Any]] = objects.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
        "items"
    ]
    return items


def test_lifecycle_writes_workerpool_resources(
    api: TestClient, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    assert api.get(BASE, headers=READ).json() == {"backend": "kubernetes", "pools": []}
    r = api.post(BASE, json=POOL, headers=ADMIN)
    assert r.status_code == 201, r.text
    assert r.json()["image"] == "jobqueue-worker:test" and r.json()["backend"] == "kubernetes"
    [resource] = pools(kube_api, kube_namespace)
    assert resource["spec"]["queues"] == ["emails"] and resource["spec"]["app"] == "tasks:app"
    assert resource["spec"]["autoscaling"]["enabled"] is False
    assert resource["spec"]["health"]["heartbeatStaleSeconds"] == 60  # the CRD's defaults still apply

    assert api.post(BASE, json=POOL, headers=ADMIN).status_code == 409

    auto = {"enabled": True, "min_replicas": 1, "max_replicas": 5, "target_tasks_per_replica": 7}
    r = api.put(f"{BASE}/emails/autoscaling", json=auto, headers=ADMIN)
    assert r.status_code == 200 and r.json()["autoscaling"] == auto, r.text
    # The shared rule: a manual scale turns autoscaling off.
    r = api.post(f"{BASE}/emails/scale", json={"replicas": 3}, headers=ADMIN)
    assert r.status_code == 200, r.text
    [resource] = pools(kube_api, kube_namespace)
    assert resource["spec"]["replicas"] == 3 and resource["spec"]["autoscaling"]["enabled"] is False
    assert resource["spec"]["autoscaling"]["maxReplicas"] == 5

    r = api.patch(f"{BASE}/emails", json={"concurrency": 9}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["concurrency"] == 9
    assert api.get(f"{BASE}/emails", headers=READ).json()["generation"] >= 4
    assert api.get(f"{BASE}/emails/events", headers=READ).status_code == 200

    assert api.delete(f"{BASE}/emails", headers=ADMIN).status_code == 204
    assert api.get(f"{BASE}/emails", headers=READ).status_code == 404
    assert api.delete(f"{BASE}/emails", headers=ADMIN).status_code == 404
    assert api.get(f"{BASE}/emails/events", headers=READ).status_code == 404


def test_api_server_rejections_are_422_naming_the_field(
    api: TestClient, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    # The app pattern is the CRD's rule (the REST schema checks it too); processes bound likewise.
    r = api.post(BASE, json={**POOL, "app": "not an app"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["field"] == "app", r.text
    r = api.post(BASE, json={k: v for k, v in POOL.items() if k != "app"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["field"] == "app", r.text
    r = api.post(BASE, json={**POOL, "autoscaling": {"enabled": True, "min_replicas": 4, "max_replicas": 2}},
                 headers=ADMIN)  # fmt: skip
    assert r.status_code == 422 and r.json()["field"] == "autoscaling.min_replicas"
    r = api.post(BASE, json=POOL, headers=ADMIN)
    assert r.status_code == 201
    r = api.patch(f"{BASE}/emails", json={"queues": ["q", "q"]}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["field"] == "queues", r.text
    assert [p["metadata"]["name"] for p in pools(kube_api, kube_namespace)] == ["emails"]


def test_the_api_server_s_own_schema_and_cel_errors_name_the_field(
    kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    """What the REST schema does not check first (another client, an older API version, a CRD rule
    added later) still comes back as a ValidationError naming the field in the REST spelling."""
    backend = KubernetesPoolBackend(kube_api, kube_namespace, default_image="jobqueue-worker:test")
    spec = PoolSpec("direct", ("emails",))
    with pytest.raises(ValidationError) as info:
        asyncio.run(backend.create(spec, ClusterOptions(app="tasks:app", processes=1000)))
    assert info.value.field == "processes", info.value
    assert pools(kube_api, kube_namespace) == []  # nothing half-created
    asyncio.run(backend.create(spec, ClusterOptions(app="tasks:app")))
    with pytest.raises(ValidationError) as info:  # the CEL rule of the CRD
        asyncio.run(backend._patch("direct", {"autoscaling": {"minReplicas": 9, "maxReplicas": 2}}))
    assert info.value.field == "autoscaling" and "minReplicas" in info.value.message, info.value


def test_read_scope_cannot_change_and_unknown_is_404(api: TestClient) -> None:
    assert api.post(BASE, json=POOL, headers=READ).status_code == 403
    assert api.get(f"{BASE}/nope", headers=READ).status_code == 404
    assert api.post(f"{BASE}/nope/scale", json={"replicas": 1}, headers=ADMIN).status_code == 404


def test_a_pool_created_over_rest_becomes_workers_that_run_tasks(
    operator: Any,
    api: TestClient,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    client: Client,
    pod_runner_factory: Callable[..., Any],
) -> None:
    """Issue 18's done-when on the control plane: REST -> WorkerPool -> (operator) Deployment -> pods
    whose workers run tasks; a scale through REST changes the Deployment through the operator."""
    apps = k8s_client.AppsV1Api(kube_api)
    # kwok never pulls images; the pod runner runs the worker from this checkout instead.
    body = {**POOL, "name": "crunch", "queues": ["crunch"], "app": "jq_test_app:app", "pool_kind": "thread"}
    assert api.post(BASE, json=body, headers=ADMIN).status_code == 201
    wait_until(lambda: deployment_replicas(apps, kube_namespace, "crunch") == 1, 60, "the Deployment")
    pod_runner_factory("crunch")
    assert client.enqueue("add", [2, 3], queue="crunch").result(timeout=90) == 5

    assert api.post(f"{BASE}/crunch/scale", json={"replicas": 2}, headers=ADMIN).status_code == 200
    wait_until(lambda: deployment_replicas(apps, kube_namespace, "crunch") == 2, 60, "the scale-up")

    def ready_two() -> bool:
        return bool(api.get(f"{BASE}/crunch", headers=READ).json()["status"]["ready_replicas"] == 2)

    wait_until(ready_two, 90, "two ready replicas in the pool's REST status")
    assert api.get(f"{BASE}/crunch/events", headers=READ).json()["events"], "the operator's events"
    assert api.delete(f"{BASE}/crunch", headers=ADMIN).status_code == 204
    wait_until(lambda: pools(kube_api, kube_namespace) == [], 60, "the WorkerPool to go")


def deployment_replicas(apps: k8s_client.AppsV1Api, namespace: str, name: str) -> int | None:
    try:
        return int(apps.read_namespaced_deployment(name, namespace).spec.replicas or 0)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
