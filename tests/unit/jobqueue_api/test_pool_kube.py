"""The Kubernetes pools backend's pure parts: field names in REST spelling, the WorkerPool resource and its
REST view, and the translation of Kubernetes API errors (never a 500)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from pydantic import SecretStr

from jobqueue import Settings
from jobqueue.embedded.redis_server import free_port
from jobqueue.errors import PoolExists, PoolNotFound, ValidationError
from jobqueue.pools import PoolAutoscaling, PoolSpec
from jobqueue_api import create_app
from jobqueue_api.errors import ApiError
from jobqueue_api.pool_backends import ClusterOptions
from jobqueue_api.pool_kube import KubernetesPoolBackend, rest_field, to_resource, translate, view
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(30)


def api_exception(status: int, body: object = None) -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps(body) if body is not None else None
    return exc


@pytest.mark.parametrize(
    ("kube", "rest"),
    [
        ("spec.autoscaling.minReplicas", "autoscaling.min_replicas"),
        ("spec.autoscaling.targetTasksPerReplica", "autoscaling.target_tasks_per_replica"),
        ("spec.queues[1]", "queues.1"),
        ("spec.poolKind", "pool_kind"),
        ("spec.app", "app"),
    ],
)
def test_fields_are_named_as_the_rest_api_names_them(kube: str, rest: str) -> None:
    assert rest_field(kube) == rest


def test_errors_translate_to_their_meaning() -> None:
    assert isinstance(translate(api_exception(404), "p"), PoolNotFound)
    assert isinstance(translate(api_exception(409), "p"), PoolExists)
    body = {"message": "x", "details": {"causes": [{"field": "spec.processes", "message": "must be <= 64"}]}}
    error = translate(api_exception(422, body), "p")
    assert isinstance(error, ValidationError) and (error.field, error.message) == (
        "processes",
        "must be <= 64",
    )
    garbled = translate(api_exception(422, ["not", "an", "object"]), "p")
    assert isinstance(garbled, ValidationError) and garbled.field == "body"
    for status in (403, 500, 503):
        assert isinstance(translate(api_exception(status), "p"), ApiError)
    # A 404 on the list (no pool named) is the CRD missing, not a pool.
    assert isinstance(translate(api_exception(404), ""), ApiError)


def test_resource_and_view_round_trip() -> None:
    spec = PoolSpec("mail", ("a", "b"), 3, 2, PoolAutoscaling(True, 1, 9, 12))
    resource = to_resource(spec, ClusterOptions(image="img:1", app="m:app", processes=2, pool_kind="thread"))
    resource["metadata"].update(generation=4, uid="u")
    shown = view(resource)
    assert shown["autoscaling"] == {
        "enabled": True, "min_replicas": 1, "max_replicas": 9, "target_tasks_per_replica": 12,
    }  # fmt: skip
    assert (shown["queues"], shown["processes"], shown["pool_kind"], shown["generation"]) == (
        ["a", "b"],
        2,
        "thread",
        4,
    )
    assert shown["status"]["desired_replicas"] is None and shown["status"]["current_replicas"] == 0


def test_an_unreachable_kubernetes_api_is_a_503_not_a_500() -> None:
    configuration = k8s.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port()}"
    configuration.retries = 0
    backend = KubernetesPoolBackend(k8s.ApiClient(configuration), "default")
    settings = Settings(redis_url=SecretStr(f"redis://127.0.0.1:{free_port()}/0"))
    app = create_app(settings, ApiSettings(keys=SecretStr("a:admin")), pool_backend=backend)
    with TestClient(app, raise_server_exceptions=False) as api:
        r = api.get("/api/v1/worker-pools", headers={"Authorization": "Bearer a"})
    assert r.status_code == 503 and r.headers["Retry-After"] == "5", r.text
