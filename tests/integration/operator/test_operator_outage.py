"""Redis unreachable: the operator keeps running and healthy, counts the failures as temporary errors,
and applies the pending configuration once Redis is back (no crash loop, no lost change)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from jobqueue import Client, Settings
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.embedded.redis_server import RedisServer
from k8s.control_plane import ControlPlane, free_port, wait_until
from k8s.custom_resources import create_cr
from k8s.operator_process import OperatorProcess
from k8s.operator_rbac import operator_kubeconfig, remove_cluster_rbac

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("jobqueue_crds")]


def test_operator_rides_out_a_redis_outage(
    kube_control_plane: ControlPlane, kube_api: k8s_client.ApiClient, kube_namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{port}/0",
        key_prefix=f"t{uuid.uuid4().hex[:10]}",
        socket_timeout_seconds=2,
    )
    kubeconfig = operator_kubeconfig(kube_api, kube_namespace, kube_control_plane.kubeconfig, tmp_path / "kc")
    operator = OperatorProcess(kubeconfig, kube_namespace, settings, tmp_path / "operator.log")
    server: RedisServer | None = None
    try:
        wait_until(operator.healthy, 60, "the operator's liveness endpoint")
        create_cr(
            kube_api,
            kube_namespace,
            "jobqueues",
            {"kind": "JobQueue", "metadata": {"name": "late"}, "spec": {"paused": True}},
        )
        wait_until(
            lambda: 'error="BrokerUnavailable"' in operator.metrics(),
            60,
            "a reconcile error counted as temporary",
        )
        assert operator.healthy()  # still running and live: a temporary error, not a crash

        server = RedisServer(tmp_path / "redis", port=port).start()
        client = Client(settings)
        try:
            wait_until(
                lambda: QueueAdmin(client).is_paused("late"), 60, "the configuration once Redis is back"
            )
        finally:
            client.close()
        assert operator.healthy()
    finally:
        operator.stop()
        remove_cluster_rbac(kube_api, kube_namespace)
        if server is not None:
            server.stop()
