"""Operator timers survive unexpected exceptions (issue 15): a fault injected into the status read of the
JobQueue timer is logged and retried after the configured retry delay, and the status catches up."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from jobqueue import Client, Settings
from k8s.control_plane import ControlPlane, wait_until
from k8s.custom_resources import create_cr, get_cr
from k8s.operator_process import OperatorProcess
from k8s.operator_rbac import operator_kubeconfig, remove_cluster_rbac

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("jobqueue_crds")]


def test_a_timer_that_raises_is_retried_and_the_status_catches_up(
    kube_control_plane: ControlPlane,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    settings: Settings,
    client: Client,
    tmp_path: Path,
) -> None:
    kubeconfig = operator_kubeconfig(kube_api, kube_namespace, kube_control_plane.kubeconfig, tmp_path / "kc")
    operator = OperatorProcess(
        kubeconfig,
        kube_namespace,
        settings,
        tmp_path / "operator.log",
        fault="jobqueue_operator.handlers_jobqueue:read_queue_status:3",
    )
    try:
        wait_until(operator.healthy, 60, "the operator's liveness endpoint")
        create_cr(
            kube_api,
            kube_namespace,
            "jobqueues",
            {"kind": "JobQueue", "metadata": {"name": "flaky"}, "spec": {}},
        )
        for _ in range(2):
            client.enqueue("add", [1, 2], queue="flaky")

        def shows_depth() -> bool:
            status = get_cr(kube_api, kube_namespace, "jobqueues", "flaky").get("status", {})
            return bool(status.get("depth") == {"high": 0, "medium": 2, "low": 0})

        # Three failures, each retried after the 1 s retry delay (kopf's own default would be 60 s each).
        wait_until(shows_depth, 40, "status.depth once the timer stops failing")
        assert operator.log().count("injected fault in read_queue_status") >= 3
        assert operator.healthy()
    finally:
        operator.stop()
        remove_cluster_rbac(kube_api, kube_namespace)
