"""The chart's end-to-end flow of test_helm_on_docker_node.py (the same code) on the real node: the kubelet
of the control plane's release on containerd (tests/k8s/kubelet_node.py, opt-in: JOBQUEUE_TEST_NODE=kubelet).
Here the kubelet itself enforces what the docker node imitates: runAsNonRoot, the read-only root, seccomp,
readiness and liveness probes, projected service-account tokens, hook Jobs and `helm test` pods.

The node has no kube-proxy and no cluster DNS, and the test's Redis, PostgreSQL and API server listen on
127.0.0.1 only, so the release runs with the chart's host-network values (docs/operations.md, "Host
networking"): hostNetwork for every jobqueue pod and the example pool's workers, and
KUBERNETES_SERVICE_HOST/PORT naming the API server on 127.0.0.1, the address its certificate names.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from kubernetes import client as k8s_client

from e2e.images.test_helm_on_docker_node import (  # the same flow, another node
    chart_values,
    empty_database,  # noqa: F401 (fixture, by import)
    run_helm_flow,
)
from jobqueue import Settings
from k8s.control_plane import ControlPlane, free_port
from k8s.kubelet_node import KubeletNode

pytestmark = [
    # Importing both images into containerd comes on top of the docker node's 3 minutes.
    pytest.mark.timeout(1200),
    # Checked here as well as in the fixture, so an opted-out run neither builds images nor starts a
    # control plane first.
    pytest.mark.skipif(
        os.environ.get("JOBQUEUE_TEST_NODE") != "kubelet",
        reason="REAL KUBELET NODE IS OPT-IN: set JOBQUEUE_TEST_NODE=kubelet (see tests/k8s/README.md)",
    ),
]
# Events of a pod the kubelet could not run or kept restarting. A probe failing while a process starts
# (connection refused before it listens) is not one: only what the kubelet did about it counts.
PROBLEM_REASONS = {"BackOff", "Failed", "FailedMount", "FailedCreatePodSandBox", "Evicted"}


@pytest.fixture
def kubelet_node_images(images: dict[str, str]) -> tuple[str, ...]:
    """The freshly built worker and operator images, imported into the node's containerd."""
    return (images["worker"], images["operator"])


class KubeletNodeChecks:
    """Evidence on the real node: container logs, and the events the kubelet records through the API."""

    def __init__(self, node: KubeletNode, core: k8s_client.CoreV1Api) -> None:
        self.node, self.name, self.core = node, node.name, core

    def migrate_logs(self, namespace: str) -> list[str] | None:
        # The hook's Job is deleted once it succeeds (hook-succeeded), and the kubelet removes a deleted
        # pod's logs with its containers: what is left here depends on that race, so no count is checked
        # (helm fails install and upgrade if the Job fails; the flow checks the schema itself).
        return None

    def helm_test_log(self, namespace: str) -> str | None:
        return None  # deleted on success too; "Phase: Succeeded" means its script exited 0 after result 5

    def problems(self, namespace: str) -> list[str]:
        found = [
            f"{e.involved_object.name}: {e.reason}: {e.message}"
            for e in self.core.list_namespaced_event(namespace).items
            if e.type == "Warning"
            and (e.reason in PROBLEM_REASONS or "liveness probe, will be restarted" in (e.message or ""))
        ]
        for pod in self.core.list_namespaced_pod(namespace).items:
            for status in pod.status.container_statuses or []:
                if status.restart_count:
                    found.append(f"{pod.metadata.name}/{status.name}: {status.restart_count} restarts")
        return found

    def containers(self) -> list[str]:
        return self.node.containers()

    def diagnostics(self) -> str:
        return self.node.log_tails()


def test_helm_install_runs_hooks_operator_workers_and_helm_test_on_the_kubelet_node(
    images: dict[str, str],
    helm_bin: Path,
    kube_control_plane: ControlPlane,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    kubelet_node: KubeletNode,
    settings: Settings,
    empty_database: str,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    values = chart_values(images, kubelet_node, settings, free_port())
    server = urlsplit(kube_control_plane.server)
    values["hostNetwork"] = True
    values["kubernetesApi"] = {"serviceHost": server.hostname, "servicePort": server.port}
    values["operator"]["workerPoolPolicy"] = {"allowHostNamespaces": True}
    run_helm_flow(
        KubeletNodeChecks(kubelet_node, k8s_client.CoreV1Api(kube_api)), values, helm_bin,
        kube_control_plane, kube_api, kube_namespace, settings, empty_database, tmp_path,
    )  # fmt: skip
