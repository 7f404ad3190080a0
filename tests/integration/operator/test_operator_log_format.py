"""``jobqueue-operator --log-format json`` against a real control plane: every line it writes is JSON
(kopf's per-object lines name their object), and with JOBQUEUE_OPERATOR_WORKER_LOG_FORMAT=json (what the
chart sets) the workers of a WorkerPool run with ``--log-format json``; with the chart's
redis.external.passwordSecretName (JOBQUEUE_OPERATOR_WORKER_REDIS_PASSWORD_SECRET_*) they read
JOBQUEUE_REDIS_PASSWORD from that Secret, by reference only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from jobqueue import Settings
from k8s.control_plane import ControlPlane, wait_until
from k8s.custom_resources import create_cr
from k8s.operator_process import OperatorProcess
from k8s.operator_rbac import operator_kubeconfig, remove_cluster_rbac

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def json_operator(
    kube_control_plane: ControlPlane,
    kube_api: k8s_client.ApiClient,
    jobqueue_crds: list[str],
    kube_namespace: str,
    settings: Settings,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    kubeconfig = operator_kubeconfig(
        kube_api, kube_namespace, kube_control_plane.kubeconfig, tmp_path / "operator.kubeconfig"
    )
    proc = OperatorProcess(
        kubeconfig,
        kube_namespace,
        settings,
        tmp_path / "operator.log",
        extra_args=["--log-format", "json"],  # after the helper's own --log-format text: this one wins
        extra_env={
            "JOBQUEUE_OPERATOR_WORKER_LOG_FORMAT": "json",
            "JOBQUEUE_OPERATOR_WORKER_REDIS_PASSWORD_SECRET_NAME": "redis-auth",
            "JOBQUEUE_OPERATOR_WORKER_REDIS_PASSWORD_SECRET_KEY": "pw",
        },
    )
    try:
        wait_until(proc.healthy, 60, "the operator's liveness endpoint")
        yield proc
    finally:
        proc.stop()
        remove_cluster_rbac(kube_api, kube_namespace)


def worker_args(apps: k8s_client.AppsV1Api, namespace: str, name: str) -> list[str] | None:
    try:
        deployment = apps.read_namespaced_deployment(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return list(deployment.spec.template.spec.containers[0].args)


def test_the_operator_logs_json_and_runs_its_workers_with_json_logs_and_the_redis_password_secret(
    json_operator: OperatorProcess, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    create_cr(
        kube_api,
        kube_namespace,
        "workerpools",
        {
            "kind": "WorkerPool",
            "metadata": {"name": "logs"},
            "spec": {
                "queues": ["logs"],
                "image": "example.invalid/jobqueue-worker:test",
                "app": "jq_test_app:app",
            },
        },
    )
    apps = k8s_client.AppsV1Api(kube_api)
    wait_until(lambda: worker_args(apps, kube_namespace, "logs") is not None, 60, "the pool's Deployment")
    args = worker_args(apps, kube_namespace, "logs")
    assert args is not None and args[:3] == ["--log-format", "json", "worker"]
    container = apps.read_namespaced_deployment("logs", kube_namespace).spec.template.spec.containers[0]
    [password] = [e for e in container.env if e.name == "JOBQUEUE_REDIS_PASSWORD"]
    assert password.value is None
    assert (password.value_from.secret_key_ref.name, password.value_from.secret_key_ref.key) == (
        "redis-auth",
        "pw",
    )

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in json_operator.log().splitlines() if line.strip()]

    # kopf logs the handler's success for the object; the line names it under "object".
    wait_until(
        lambda: any((x.get("object") or {}).get("name") == "logs" for x in lines()), 60, "a per-object line"
    )
    [first, *_] = [x for x in lines() if (x.get("object") or {}).get("name") == "logs"]
    assert first["object"]["kind"] == "WorkerPool" and first["object"]["namespace"] == kube_namespace
    assert {"ts", "level", "logger", "message"} <= first.keys()
