"""The jobqueue CRDs applied once per session to the real test control plane, and the fixtures of the
operator end-to-end tests: the operator in a subprocess and the pod runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from jobqueue import Settings
from jobqueue_operator.manifests import selector_string
from k8s.control_plane import ControlPlane, wait_until
from k8s.crds import CRDS, apply_crds
from k8s.operator_process import OperatorProcess
from k8s.operator_rbac import operator_kubeconfig, remove_cluster_rbac
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
    # Least privilege: the operator runs with exactly the RBAC docs/operator.md lists.
    kubeconfig = operator_kubeconfig(
        kube_api, kube_namespace, kube_control_plane.kubeconfig, tmp_path / "operator.kubeconfig"
    )
    proc = OperatorProcess(kubeconfig, kube_namespace, settings, tmp_path / "operator.log")
    try:
        wait_until(proc.healthy, 60, "the operator's liveness endpoint")
        yield proc
    finally:
        proc.stop()
        remove_cluster_rbac(kube_api, kube_namespace)


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
