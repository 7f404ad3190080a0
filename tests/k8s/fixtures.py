"""Pytest fixtures for the real Kubernetes control plane (registered by tests/conftest.py).

Without the binaries the tests that need a cluster are skipped with the command that builds them, except
under CI=true, where a missing control plane is a failure: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from k8s.control_plane import BUILD_SCRIPT, ControlPlane, default_bin_dir, missing_binaries


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
