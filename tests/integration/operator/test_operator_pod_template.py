"""A WorkerPool's podTemplate and disruptionBudget through the real operator (subprocess, least-privilege
RBAC) on the real control plane: the Deployment keeps the template's sidecar and volumes around the
worker, the PodDisruptionBudget follows spec.disruptionBudget, and a template the merge refuses is
reported on the pool's conditions with nothing applied."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from k8s.control_plane import wait_until
from k8s.custom_resources import condition, create_cr, get_cr, patch_spec

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("operator")]

SIDECAR = {"name": "proxy", "image": "example.invalid/envoy:1", "args": ["--config", "/etc/envoy.yaml"]}
SETTINGS = {"name": "settings", "configMap": {"name": "acme-settings"}}


def pool(name: str, template: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "kind": "WorkerPool",
        "metadata": {"name": name},
        "spec": {
            "queues": ["default"],
            "image": "example.invalid/jobqueue-worker:test",
            "app": "jq_test_app:app",
            "podTemplate": {"spec": template},
            **spec,
        },
    }


def read_or_none(read: Any, name: str, namespace: str) -> Any:
    try:
        return read(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_template_is_merged_and_the_budget_follows_the_spec(
    kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    apps, policy = k8s_client.AppsV1Api(kube_api), k8s_client.PolicyV1Api(kube_api)
    worker_part = {"name": "worker", "volumeMounts": [{"name": "settings", "mountPath": "/etc/acme"}]}
    template = {"containers": [worker_part, SIDECAR], "volumes": [SETTINGS]}
    create_cr(
        kube_api,
        kube_namespace,
        "workerpools",
        pool("mail", template, disruptionBudget={"maxUnavailable": 1}),
    )

    read = apps.read_namespaced_deployment
    wait_until(lambda: read_or_none(read, "mail", kube_namespace) is not None, 60, "the Deployment")
    pod = read("mail", kube_namespace).spec.template.spec
    assert [c.name for c in pod.containers] == ["worker", "proxy"]
    worker, proxy = pod.containers
    assert worker.image == "example.invalid/jobqueue-worker:test"
    assert {(m.name, m.mount_path) for m in worker.volume_mounts} == {
        ("settings", "/etc/acme"),
        ("jobqueue-tmp", "/tmp"),
    }
    assert worker.liveness_probe._exec.command[:2] == ["jobqueue", "worker-health"]
    assert proxy.args == SIDECAR["args"]
    assert {v.name for v in pod.volumes} == {"settings", "jobqueue-tmp"}

    budget = policy.read_namespaced_pod_disruption_budget
    wait_until(
        lambda: read_or_none(budget, "mail", kube_namespace) is not None, 60, "the PodDisruptionBudget"
    )
    pdb = budget("mail", kube_namespace)
    assert pdb.spec.max_unavailable == 1
    assert pdb.spec.selector.match_labels == {"jobqueue.dev/pool": "mail"}
    assert pdb.metadata.owner_references[0].kind == "WorkerPool"

    patch_spec(kube_api, kube_namespace, "workerpools", "mail", {"disruptionBudget": None})
    wait_until(lambda: read_or_none(budget, "mail", kube_namespace) is None, 60, "the budget to be deleted")


def test_a_template_the_merge_refuses_is_a_condition_and_applies_nothing(
    kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    # CEL cannot see this one (a volumeMount naming no volume); the operator's merge refuses it whole.
    worker_part = {"name": "worker", "volumeMounts": [{"name": "nowhere", "mountPath": "/etc/acme"}]}
    create_cr(
        kube_api, kube_namespace, "workerpools", pool("broken", {"containers": [worker_part, SIDECAR]},
                                                      disruptionBudget={"minAvailable": 1}),
    )  # fmt: skip

    def ready() -> dict[str, Any]:
        return condition(get_cr(kube_api, kube_namespace, "workerpools", "broken"), "Ready") or {}

    wait_until(lambda: ready().get("reason") == "InvalidSpec", 60, "the InvalidSpec condition")
    assert ready()["status"] == "False"
    assert "spec.podTemplate.spec.containers[worker].volumeMounts[nowhere]" in ready()["message"]
    apps, policy = k8s_client.AppsV1Api(kube_api), k8s_client.PolicyV1Api(kube_api)
    assert read_or_none(apps.read_namespaced_deployment, "broken", kube_namespace) is None
    assert read_or_none(policy.read_namespaced_pod_disruption_budget, "broken", kube_namespace) is None
