"""The WorkerPool pod policy enforced by the real operator (least-privilege RBAC, real control plane):
a pool asking for host access or another identity gets Ready=False PodPolicyViolation, a Warning event and
no Deployment; fixing the spec applies it (issue 15 #12)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from k8s.control_plane import wait_until
from k8s.custom_resources import condition, create_cr, events_for, get_cr, patch_spec

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("operator")]


def deployment_exists(apps: k8s_client.AppsV1Api, namespace: str, name: str) -> bool:
    try:
        apps.read_namespaced_deployment(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_a_pool_asking_for_host_access_gets_no_deployment(
    kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    hostile: dict[str, Any] = {
        "hostNetwork": True,
        "initContainers": [{"name": "root", "image": "busybox", "securityContext": {"privileged": True}}],
        "serviceAccountName": "someone-else",
    }
    create_cr(
        kube_api,
        kube_namespace,
        "workerpools",
        {
            "kind": "WorkerPool",
            "metadata": {"name": "hostile"},
            "spec": {
                "queues": ["policy"],
                "image": "example.invalid/jobqueue-worker:test",
                "app": "jq_test_app:app",
                "podTemplate": {"spec": hostile},
            },
        },
    )

    def refused() -> dict[str, Any] | None:
        ready = condition(get_cr(kube_api, kube_namespace, "workerpools", "hostile"), "Ready")
        return ready if ready and ready["reason"] == "PodPolicyViolation" else None

    wait_until(lambda: refused() is not None, 60, "Ready=False PodPolicyViolation")
    ready = refused()
    assert ready is not None and ready["status"] == "False"
    for path in ("hostNetwork", "initContainers[0].securityContext.privileged", "serviceAccountName"):
        assert path in ready["message"], ready["message"]
    wait_until(
        lambda: "PodPolicyViolation" in events_for(kube_api, kube_namespace, "hostile"), 30, "the event"
    )
    apps = k8s_client.AppsV1Api(kube_api)
    # Several reconcile intervals: the timer must not create the Deployment either.
    for _ in range(3):
        assert not deployment_exists(apps, kube_namespace, "hostile")
        time.sleep(2)
    # With the offending fields gone, the pool is applied.
    patch_spec(kube_api, kube_namespace, "workerpools", "hostile", {"podTemplate": {"spec": None}})
    wait_until(lambda: deployment_exists(apps, kube_namespace, "hostile"), 60, "the Deployment once allowed")
