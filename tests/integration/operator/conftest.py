"""The jobqueue CRDs applied once per session to the real test control plane, and the fixtures of the
operator end-to-end tests: the operator in a subprocess and the pod runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from pydantic import SecretStr

from jobqueue import Settings
from jobqueue_api import create_app
from jobqueue_api.pool_kube import KubernetesPoolBackend
from jobqueue_api.settings import ApiSettings
from jobqueue_operator.manifests import selector_string
from k8s.api_rbac import api_kubeconfig
from k8s.control_plane import ControlPlane
from k8s.crds import CRDS, apply_crds
from k8s.operator_process import OperatorProcess, running_operator
from k8s.pod_runner import PodRunner


@pytest.fixture(scope="session")
def jobqueue_crds(kube_api: k8s_client.ApiClient) -> list[str]:
    """Every CRD in crds/, Established."""
    return apply_crds(kube_api, sorted(CRDS.glob("*.yaml")))


@pytest.fixture(scope="session")
def peering_crds(kube_api: k8s_client.ApiClient) -> list[str]:
    """kopf's peering CRDs (crds/peering/), for tests of peered operator replicas."""
    return apply_crds(kube_api, sorted((CRDS / "peering").glob("*.yaml")))


@pytest.fixture
def operator(
    kube_control_plane: ControlPlane,
    kube_api: k8s_client.ApiClient,
    jobqueue_crds: list[str],
    kube_namespace: str,
    settings: Settings,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    """The real operator in a subprocess, watching the test's namespace, on the test's Redis prefix."""
    with running_operator(kube_control_plane, kube_api, kube_namespace, settings, tmp_path) as proc:
        yield proc


@pytest.fixture
def pod_runner_factory(
    kube_api: k8s_client.ApiClient, kube_namespace: str, settings: Settings, tmp_path: Path
) -> Iterator[Callable[..., PodRunner]]:
    """Start a PodRunner for a WorkerPool's pods (stopped, with its workers, at the end of the test)."""
    runners: list[PodRunner] = []

    def start(pool: str, worker_settings: Settings | None = None) -> PodRunner:
        runner = PodRunner(
            kube_api, kube_namespace, selector_string(pool), worker_settings or settings, tmp_path
        ).start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        runner.stop()


@pytest.fixture
def api(
    kube_api: k8s_client.ApiClient,
    kube_control_plane: ControlPlane,
    kube_namespace: str,
    settings: Settings,
    tmp_path: Path,
) -> Iterator[TestClient]:
    """The REST API in-process, its pool backend on the real control plane as the API's own service
    account (the chart's RBAC, not the test's admin), with an admin key ``a`` and a read key ``r``."""
    config = api_kubeconfig(
        kube_api, kube_namespace, kube_control_plane.kubeconfig, tmp_path / "api.kubeconfig"
    )
    sa_client = k8s_config.new_client_from_config(config_file=str(config))
    backend = KubernetesPoolBackend(sa_client, kube_namespace, default_image="jobqueue-worker:test")
    app = create_app(settings, ApiSettings(keys=SecretStr("a:admin,r:read")), pool_backend=backend)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    sa_client.close()
