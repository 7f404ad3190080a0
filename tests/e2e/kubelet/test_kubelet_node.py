"""Pods on a real kubelet (tests/k8s/kubelet_node.py, opt-in: JOBQUEUE_TEST_NODE=kubelet): what the docker
node only imitates is enforced here by the kubelet of the control plane's release and containerd.

The image is the locally made Debian base (bash tests/images/build-base-image.sh --base-only): its
default user is root, which is what runAsNonRoot must refuse.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jq_testing import wait_until
from kubernetes import client as k8s_client

from k8s.control_plane import ControlPlane, free_port, read_versions
from k8s.kubelet_node import POD_CIDR, KubeletNode

pytestmark = [
    pytest.mark.timeout(300),
    # Checked here as well as in the fixture, so an opted-out run does not start a control plane first.
    pytest.mark.skipif(
        os.environ.get("JOBQUEUE_TEST_NODE") != "kubelet",
        reason="REAL KUBELET NODE IS OPT-IN: set JOBQUEUE_TEST_NODE=kubelet (see tests/k8s/README.md)",
    ),
]
IMAGE = "jobqueue-base:bookworm"


def wait_for(node: KubeletNode, check: Callable[[], bool], timeout: float) -> None:
    """wait_until, failing with the container logs and the kubelet's and containerd's log tails."""
    try:
        wait_until(check, timeout=timeout, interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{node.log_tails(lines=15)}") from None


def pod(node: KubeletNode, name: str, script: str, **spec: Any) -> dict[str, Any]:
    """A pod of one container ``main`` running ``script`` as a non-root user on a read-only root."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": node.node_selector,
            "tolerations": [node.toleration],
            "automountServiceAccountToken": False,
            # What the chart's pods run with (values.yaml podSecurityContext, the operator's manifests).
            "securityContext": {
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "runAsNonRoot": True,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                    **spec.pop("main", {}),
                }
            ],
            "volumes": [{"name": "work", "emptyDir": {}}],
            **spec,
        },
    }


def container_log(node: KubeletNode, namespace: str, name: str) -> str:
    """The kubelet's log of container ``main`` of a pod (CRI format: time, stream, tag, line)."""
    paths = sorted(node.log_dir.glob(f"{namespace}_{name}_*/main/*.log"))
    return "".join(path.read_text(errors="replace") for path in paths)


def test_the_node_registers_ready_as_the_release_and_runs_a_host_network_pod(
    kube_control_plane: ControlPlane,
    kubelet_node: KubeletNode,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    info = core.read_node(kubelet_node.name).status.node_info
    assert info.kubelet_version == read_versions()["KUBERNETES_VERSION"]
    assert info.container_runtime_version.startswith("containerd://")

    # hostNetwork: the pod reaches a server the test listens with on 127.0.0.1.
    with socket.create_server(("127.0.0.1", free_port())) as server:
        port = server.getsockname()[1]
        script = (
            f'python3 -c \'import socket; s = socket.create_connection(("127.0.0.1", {port})); '
            's.sendall(b"from the pod"); s.close()\'; echo sent'
        )
        manifest = pod(kubelet_node, "host-net", script, hostNetwork=True, restartPolicy="Never")
        core.create_namespaced_pod(kube_namespace, manifest)
        server.settimeout(120)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(10)
            assert conn.recv(100) == b"from the pod"

    def succeeded() -> bool:
        return bool(core.read_namespaced_pod("host-net", kube_namespace).status.phase == "Succeeded")

    wait_for(kubelet_node, succeeded, 60)
    assert "sent" in container_log(kubelet_node, kube_namespace, "host-net")


def test_run_as_non_root_read_only_root_seccomp_and_no_new_privileges_are_enforced(
    kubelet_node: KubeletNode, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    # No runAsUser: the image's user is root, which runAsNonRoot refuses before the container starts.
    as_root = pod(kubelet_node, "as-root", "true")
    as_root["spec"]["securityContext"] = {"runAsNonRoot": True}
    core.create_namespaced_pod(kube_namespace, as_root)
    script = (
        'echo "uid=$(id -u)"; touch /not-writable || echo "root is read-only"; '
        "touch /work/ok && echo 'emptyDir is writable'; "
        "grep -E '^(Seccomp|NoNewPrivs|CapEff):' /proc/self/status"
    )
    core.create_namespaced_pod(kube_namespace, pod(kubelet_node, "non-root", script, restartPolicy="Never"))

    def refused() -> str:
        statuses = core.read_namespaced_pod("as-root", kube_namespace).status.container_statuses or []
        waiting = statuses[0].state.waiting if statuses else None
        return f"{waiting.reason}: {waiting.message}" if waiting else ""

    wait_for(kubelet_node, lambda: refused().startswith("CreateContainerConfigError"), 120)
    assert "runAsNonRoot and image will run as root" in refused(), refused()

    def finished() -> bool:
        return core.read_namespaced_pod("non-root", kube_namespace).status.phase in ("Succeeded", "Failed")

    wait_for(kubelet_node, finished, 120)
    log = container_log(kubelet_node, kube_namespace, "non-root")
    assert "uid=10001" in log and "emptyDir is writable" in log, log
    assert "Read-only file system" in log and "root is read-only" in log, log
    # RuntimeDefault seccomp is a filter (mode 2); no privilege escalation; every capability dropped.
    assert "Seccomp:\t2" in log and "NoNewPrivs:\t1" in log and "CapEff:\t0000000000000000" in log, log


def test_probes_mark_ready_and_a_failing_liveness_probe_restarts_the_container(
    kubelet_node: KubeletNode, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    # Alive while /work/alive exists; the first run removes it after a few seconds, so the kubelet kills
    # the container; the restarted one finds /work/restarted (the emptyDir outlives restarts) and stays.
    script = (
        "if [ -e /work/restarted ]; then touch /work/alive; exec sleep 3600; fi; "
        "touch /work/alive /work/restarted; sleep 4; rm /work/alive; exec sleep 3600"
    )
    probes = {
        "readinessProbe": {"exec": {"command": ["test", "-e", "/work/alive"]}, "periodSeconds": 1},
        "livenessProbe": {
            "exec": {"command": ["test", "-e", "/work/alive"]},
            "initialDelaySeconds": 1,
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
    }
    core.create_namespaced_pod(
        kube_namespace, pod(kubelet_node, "probed", script, terminationGracePeriodSeconds=1, main=probes)
    )

    def restarted_and_ready() -> bool:
        status = core.read_namespaced_pod("probed", kube_namespace).status
        statuses = status.container_statuses or []
        return bool(statuses and statuses[0].restart_count >= 1 and statuses[0].ready)

    wait_for(kubelet_node, restarted_and_ready, 180)
    events = core.list_namespaced_event(kube_namespace, field_selector="involvedObject.name=probed").items
    messages = " ".join(f"{e.reason}: {e.message}" for e in events)
    assert "Liveness probe failed" in messages, messages


def test_deletion_sends_sigterm_and_a_pod_network_pod_gets_an_address(
    kubelet_node: KubeletNode, kube_api: k8s_client.ApiClient, kube_namespace: str, tmp_path: Path
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # the container's user 10001 writes here
    # Not hostNetwork: the CNI (ptp) network gives the pod its own address, served to the test directly.
    script = (
        "trap 'echo got TERM > /out/term; exit 0' TERM; "
        "python3 -m http.server 8080 --directory /work & echo $! > /work/server.pid; "
        "while true; do sleep 0.2; done"
    )
    manifest = pod(
        kubelet_node,
        "stops",
        script,
        terminationGracePeriodSeconds=30,
        main={
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
            "volumeMounts": [
                {"name": "work", "mountPath": "/work"},
                {"name": "out", "mountPath": "/out"},
            ],
        },
        volumes=[
            {"name": "work", "emptyDir": {}},
            {"name": "out", "hostPath": {"path": str(out), "type": "Directory"}},
        ],
    )
    core.create_namespaced_pod(kube_namespace, manifest)

    def ready() -> bool:
        conditions = core.read_namespaced_pod("stops", kube_namespace).status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    wait_for(kubelet_node, ready, 120)
    pod_ip = core.read_namespaced_pod("stops", kube_namespace).status.pod_ip
    assert pod_ip and pod_ip.startswith(POD_CIDR.split(".0.0/")[0] + "."), pod_ip
    with socket.create_connection((pod_ip, 8080), timeout=10) as conn:
        conn.sendall(b"GET /server.pid HTTP/1.0\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.0 200"), "the pod's server did not answer on its address"

    started = time.monotonic()
    core.delete_namespaced_pod("stops", kube_namespace)
    wait_for(kubelet_node, lambda: not core.list_namespaced_pod(kube_namespace).items, 60)
    # SIGTERM reached the shell (PID 1 of the container), which exited long before the 30 s grace.
    assert (out / "term").read_text() == "got TERM\n"
    assert time.monotonic() - started < 25
