"""The test control plane itself is a real Kubernetes: the release it claims, RBAC and authentication
enforced, and a Deployment that ends in a Running pod on the kwok node."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request

import pytest
from kubernetes import client as k8s_client

from k8s.control_plane import ControlPlane, read_versions, wait_until

pytestmark = pytest.mark.timeout(300)


def test_version_is_the_pinned_release(kube_control_plane: ControlPlane) -> None:
    status, body = kube_control_plane.request("GET", "/version")
    assert status == 200
    assert body["gitVersion"] == read_versions()["KUBERNETES_VERSION"]


def test_anonymous_requests_are_refused(kube_control_plane: ControlPlane) -> None:
    context = ssl.create_default_context(cafile=str(kube_control_plane.ca_file))
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{kube_control_plane.server}/api/v1/secrets", context=context, timeout=10)
    caught.value.close()
    assert caught.value.code in (401, 403)


def test_deployment_gets_a_running_pod_on_the_fake_node(
    kube_control_plane: ControlPlane, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    labels = {"app": "hello"}
    deployment = k8s_client.V1Deployment(
        metadata=k8s_client.V1ObjectMeta(name="hello"),
        spec=k8s_client.V1DeploymentSpec(
            replicas=2,
            selector=k8s_client.V1LabelSelector(match_labels=labels),
            template=k8s_client.V1PodTemplateSpec(
                metadata=k8s_client.V1ObjectMeta(labels=labels),
                # kwok never pulls images: the name only has to be well-formed.
                spec=k8s_client.V1PodSpec(
                    containers=[k8s_client.V1Container(name="main", image="example.invalid/hello:1")]
                ),
            ),
        ),
    )
    apps = k8s_client.AppsV1Api(kube_api)
    core = k8s_client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, deployment)

    def running_pods() -> list[k8s_client.V1Pod]:
        pods = core.list_namespaced_pod(kube_namespace, label_selector="app=hello").items
        return [p for p in pods if p.status.phase == "Running"]

    wait_until(lambda: len(running_pods()) == 2, 120, "2 Running pods")
    assert {p.spec.node_name for p in running_pods()} == {kube_control_plane.node_name}
    wait_until(
        lambda: apps.read_namespaced_deployment("hello", kube_namespace).status.ready_replicas == 2,
        60,
        "the Deployment to report 2 ready replicas",
    )

    # Scaling down goes through the ReplicaSet controller and kwok's pod deletion, as in a cluster.
    apps.patch_namespaced_deployment_scale("hello", kube_namespace, {"spec": {"replicas": 1}})
    wait_until(
        lambda: len(core.list_namespaced_pod(kube_namespace, label_selector="app=hello").items) == 1,
        120,
        "the Deployment to scale down to 1 pod",
    )
