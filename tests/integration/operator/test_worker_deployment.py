"""The worker Deployment built by jobqueue_operator.manifests is accepted by a real API server and its
pods run on the kwok node, each with POD_NAME (the worker id) taken from its own name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s_client

from jobqueue_operator.manifests import Owner, selector_string, worker_deployment
from jobqueue_operator.spec import WorkerPoolSpec
from k8s.control_plane import wait_until

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("jobqueue_crds")]

EXAMPLE = Path(__file__).resolve().parents[3] / "crds" / "examples" / "workerpool.yaml"


def test_worker_deployment_runs_owned_pods(kube_api: k8s_client.ApiClient, kube_namespace: str) -> None:
    example = yaml.safe_load(EXAMPLE.read_text())
    pool = k8s_client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "jobqueue.dev", "v1alpha1", kube_namespace, "workerpools", example
    )
    owner = Owner(pool["metadata"]["name"], kube_namespace, pool["metadata"]["uid"])
    spec = WorkerPoolSpec.model_validate(pool["spec"])
    apps = k8s_client.AppsV1Api(kube_api)
    core = k8s_client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, worker_deployment(owner, spec, replicas=2))

    def running() -> list[k8s_client.V1Pod]:
        pods = core.list_namespaced_pod(kube_namespace, label_selector=selector_string(owner.name)).items
        return [p for p in pods if p.status.phase == "Running"]

    wait_until(lambda: len(running()) == 2, 120, "2 Running worker pods")
    for pod in running():
        (container,) = pod.spec.containers
        pod_name_env = next(e for e in container.env if e.name == "POD_NAME")
        assert pod_name_env.value_from.field_ref.field_path == "metadata.name"
    deployment = apps.read_namespaced_deployment(owner.name, kube_namespace)
    assert deployment.metadata.owner_references[0].uid == owner.uid
