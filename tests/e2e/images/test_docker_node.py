"""The docker node itself (tests/k8s/docker_node.py), on pods the chart does not have: init containers,
environment and volumes, exit codes in the pod status, and SIGTERM with the grace period on deletion."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jq_testing import wait_until
from kubernetes import client as k8s_client

from k8s.control_plane import ControlPlane
from k8s.docker_node import DockerNode

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def node(kube_control_plane: ControlPlane, kube_namespace: str, tmp_path: Path) -> Iterator[DockerNode]:
    docker_node = DockerNode(kube_control_plane, tmp_path / "node", tmp_path / "pod-logs").start()
    yield docker_node
    docker_node.stop()
    assert not docker_node.containers()


def wait_for(node: DockerNode, check: Callable[[], bool], timeout: float) -> None:
    """wait_until, failing with what the node saw (its errors, events and the container logs)."""
    try:
        wait_until(check, timeout=timeout, interval=0.5)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nerrors: {node.errors}\nevents: {node.events}\n{node.log_tails()}"
        ) from None


def pod(node: DockerNode, name: str, image: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": node.node_selector,
            "tolerations": [node.toleration],
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "runAsNonRoot": True},
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "command": ["sh", "-c", script],
                    "securityContext": {"readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                    **spec.pop("main", {}),
                }
            ],
            "volumes": [{"name": "work", "emptyDir": {}}],
            **spec,
        },
    }


def test_init_container_env_volumes_and_exit_code_reach_the_pod_status(
    images: dict[str, str], node: DockerNode, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    core.create_namespaced_secret(
        kube_namespace,
        k8s_client.V1Secret(metadata=k8s_client.V1ObjectMeta(name="s"), string_data={"word": "sesame"}),
    )
    script = (
        'cat /work/msg; echo "pod=$POD secret=$WORD uid=$(id -u)"; '
        "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; "
        "touch /not-writable 2>/dev/null || echo read-only; exit 3"
    )
    init = {"name": "prepare", "image": images["worker"], "command": ["sh", "-c", "echo hello > /work/msg"],
            "volumeMounts": [{"name": "work", "mountPath": "/work"}]}  # fmt: skip
    env = [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "WORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "word"}}},
    ]
    manifest = pod(node, "exits", images["worker"], script, restartPolicy="Never", initContainers=[init],
                   main={"env": env})  # fmt: skip
    core.create_namespaced_pod(kube_namespace, manifest)

    def finished() -> bool:
        return core.read_namespaced_pod("exits", kube_namespace).status.phase in ("Succeeded", "Failed")

    wait_for(node, finished, 120)
    status = core.read_namespaced_pod("exits", kube_namespace).status
    assert status.phase == "Failed"
    assert status.init_container_statuses[0].state.terminated.exit_code == 0
    assert status.container_statuses[0].state.terminated.exit_code == 3
    log = node.log_path(
        manifest | {"metadata": {"name": "exits", "namespace": kube_namespace}}, "main"
    ).read_text()
    assert "hello" in log
    assert "pod=exits secret=sesame uid=10001" in log
    assert kube_namespace in log and "read-only" in log


def test_deletion_sends_sigterm_and_waits_the_grace_period(
    images: dict[str, str], node: DockerNode, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    script = "trap 'echo got TERM; exit 0' TERM; echo up; while true; do sleep 0.2; done"
    probe = {"readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}
    manifest = pod(node, "stops", images["worker"], script, terminationGracePeriodSeconds=10, main=probe)
    core.create_namespaced_pod(kube_namespace, manifest)

    def ready() -> bool:
        conditions = core.read_namespaced_pod("stops", kube_namespace).status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    wait_for(node, ready, 120)
    assert len(node.containers()) == 1
    core.delete_namespaced_pod("stops", kube_namespace)
    wait_for(node, lambda: not core.list_namespaced_pod(kube_namespace).items, 60)
    log = node.log_path(
        manifest | {"metadata": {"name": "stops", "namespace": kube_namespace}}, "main"
    ).read_text()
    assert "got TERM" in log and "exited with 0" in log, log
    assert not node.containers()


def test_a_missing_image_or_secret_keeps_the_pod_pending_with_the_reason(
    images: dict[str, str], node: DockerNode, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    no_image = pod(node, "no-image", "jobqueue-no-such-image:0", "true")
    missing_ref = {"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}
    no_secret = pod(node, "no-secret", images["worker"], "true", main={"env": [missing_ref]})
    for manifest in (no_image, no_secret):
        core.create_namespaced_pod(kube_namespace, manifest)

    def waiting(name: str) -> str:
        statuses = core.read_namespaced_pod(name, kube_namespace).status.container_statuses or []
        state = statuses[0].state.waiting if statuses else None
        return f"{state.reason}: {state.message}" if state else ""

    wait_for(node, lambda: waiting("no-image").startswith("ErrImageNeverPull"), 60)
    wait_for(
        node, lambda: waiting("no-secret") == 'CreateContainerConfigError: secret "absent" not found', 60
    )
    assert core.read_namespaced_pod("no-secret", kube_namespace).status.phase == "Pending"
