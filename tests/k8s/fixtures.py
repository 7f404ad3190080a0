"""Pytest fixtures for the real Kubernetes control plane (registered by tests/conftest.py).

Without the binaries the tests that need a cluster are skipped with the command that builds them, except
under CI=true, where a missing control plane is a failure: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from k8s.control_plane import BUILD_SCRIPT, ControlPlane, default_bin_dir, missing_binaries
from k8s.kubelet_node import KubeletNode, node_requirements


@pytest.fixture(scope="session")
def kube_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One control plane per test session (startup takes tens of seconds)."""
    bin_dir = default_bin_dir()
    missing = missing_binaries(bin_dir)
    if missing:
        reason = (
            f"KUBERNETES CONTROL PLANE NOT BUILT: {', '.join(missing)} missing in {bin_dir}; "
            f"run {BUILD_SCRIPT.relative_to(BUILD_SCRIPT.parents[2])} once (it takes a while)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    plane = ControlPlane(bin_dir, tmp_path_factory.mktemp("k8s")).start()
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kube_api(kube_control_plane: ControlPlane) -> Iterator[k8s_client.ApiClient]:
    """A kubernetes Python client authenticated as the cluster admin."""
    api = k8s_config.new_client_from_config(config_file=str(kube_control_plane.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def kube_namespace(kube_api: k8s_client.ApiClient) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (tests never share objects)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core = k8s_client.CoreV1Api(kube_api)
    core.create_namespace(k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
def kubelet_node_images() -> tuple[str, ...]:
    """Docker images the kubelet node imports into its containerd; override it in a test module."""
    return ("jobqueue-base:bookworm",)


@pytest.fixture
def kubelet_node(
    kube_control_plane: ControlPlane,
    kube_namespace: str,
    kubelet_node_images: tuple[str, ...],
    tmp_path: Path,
) -> Iterator[KubeletNode]:
    """A real node: the kubelet of the control plane's release on a private containerd (k8s/kubelet_node.py).

    Opt-in with JOBQUEUE_TEST_NODE=kubelet: it needs root, Debian's containerd, runc and CNI plugins and
    the kubelet binary. Once opted in, anything missing is a skip naming it, or a failure under CI=true.
    Set up after the namespace, so torn down before it: the node deletes its pods and stops its containers.
    """
    if os.environ.get("JOBQUEUE_TEST_NODE") != "kubelet":
        pytest.skip("REAL KUBELET NODE IS OPT-IN: set JOBQUEUE_TEST_NODE=kubelet (see tests/k8s/README.md)")
    missing = node_requirements(kube_control_plane.bin_dir)
    if missing:
        reason = f"KUBELET NODE CANNOT START: missing {'; '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    node = KubeletNode(kube_control_plane, tmp_path / "kubelet-node", kubelet_node_images).start()
    yield node
    node.stop()
    # What the kubelet should have stopped itself when its pods were deleted (stop() then killed it).
    assert not node.leftover_containers, node.leftover_containers
    assert not node.leftover_cgroups, node.leftover_cgroups
