"""A pool's page on the kubernetes backend, in a real headless Chromium against a real API process that
reads WorkerPool resources from the test control plane with its own least-privilege ServiceAccount: the
WorkerPool's status conditions are shown, a message from the cluster as text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client

from k8s.api_rbac import api_kubeconfig
from k8s.control_plane import ControlPlane
from k8s.crds import CRDS, apply_crds

pytestmark = pytest.mark.timeout(300)

GROUP, VERSION, PLURAL = "jobqueue.dev", "v1alpha1", "workerpools"
HOSTILE = '<img src=x onerror="window.__pwned=1"><b>bold</b>'


def test_conditions_of_a_workerpool_are_shown(
    start_api: Callable[..., Any],
    browser: Any,
    kube_api: k8s_client.ApiClient,
    kube_control_plane: ControlPlane,
    kube_namespace: str,
    tmp_path: Path,
) -> None:
    apply_crds(kube_api, sorted(CRDS.glob("*.yaml")))
    objects = k8s_client.CustomObjectsApi(kube_api)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkerPool",
        "metadata": {"name": "emails"},
        "spec": {"queues": ["emails"], "image": "jobqueue-worker:test", "app": "tasks:app", "replicas": 2},
    }
    objects.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, body)
    at = "2026-01-02T03:04:05Z"
    status = {
        "replicas": 2,
        "readyReplicas": 1,
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "PodsStarting", "message": HOSTILE,
             "lastTransitionTime": at},
            {"type": "Scaling", "status": "True", "reason": "ScaledUp", "message": "0 -> 2 replicas",
             "lastTransitionTime": at},
        ],
    }  # fmt: skip
    # What the operator writes: the status subresource.
    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, kube_namespace, PLURAL, "emails", {"status": status}
    )
    config = api_kubeconfig(
        kube_api, kube_namespace, kube_control_plane.kubeconfig, tmp_path / "api.kubeconfig"
    )
    api = start_api(
        extra_env={
            "JOBQUEUE_API_POOLS_BACKEND": "kubernetes",
            "JOBQUEUE_API_POOLS_NAMESPACE": kube_namespace,
            "KUBECONFIG": str(config),
        }
    )

    page = browser.page
    page.goto(f"{api.url}/#/pools/emails")
    page.locator("#login").wait_for(state="visible")
    page.get_by_label("API key").fill("read-key")
    page.get_by_role("button", name="Sign in").click()
    conditions = page.locator("#pool-conditions")
    conditions.get_by_text("PodsStarting").wait_for()
    text = conditions.inner_text()
    assert "Ready" in text and "Scaling" in text and "ScaledUp" in text and "0 -> 2 replicas" in text
    assert HOSTILE in text
    assert page.locator("#main img, #main b").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.locator("#pool-facts", has_text="2 / 1").wait_for()
    browser.screenshots("pool-conditions")
