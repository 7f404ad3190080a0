"""`helm install` into the real test control plane (kube-apiserver, controller-manager, scheduler, kwok
nodes): the CRDs from the chart are served, every object is accepted by the API server (schema, CEL and
admission), the operator's RBAC allows exactly what it needs, and an upgrade keeps the generated secrets.

kwok nodes run no containers, so these tests skip the hooks or let kwok complete them (the migration Job
and `helm test` need the real images). tests/e2e/images/test_helm_on_docker_node.py runs them for real:
the pods on a docker node (tests/k8s/docker_node.py) as containers of the locally built images, with the
migration hook, the operator reconciling the example WorkerPool and `helm test` (docs/operations.md)."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s_client

from helm.fixtures import CHART, VALUES_FILES, run_helm
from k8s.control_plane import ControlPlane

pytestmark = pytest.mark.timeout(300)
# Every optional part but the Prometheus operator's kinds, whose CRDs this cluster does not have.
NO_PROMETHEUS_OPERATOR = [
    "--set", "monitoring.serviceMonitor.enabled=false",
    "--set", "monitoring.podMonitor.enabled=false",
    "--set", "monitoring.prometheusRule.enabled=false",
]  # fmt: skip


class Release:
    def __init__(self, helm: Path, plane: ControlPlane, namespace: str) -> None:
        self.helm, self.namespace, self.name = helm, namespace, f"r{uuid.uuid4().hex[:6]}"
        self.notes = ""
        self.env = {
            **os.environ,
            "KUBECONFIG": str(plane.kubeconfig),
            "HELM_CACHE_HOME": str(plane.kubeconfig.parent / "helm"),
        }

    def run(self, *args: str) -> str:
        return run_helm(self.helm, *args, "--namespace", self.namespace, env=self.env)

    def install_or_upgrade(self, verb: str) -> str:
        return self.run(
            verb, self.name, str(CHART), "-f", str(VALUES_FILES["all-on"]), *NO_PROMETHEUS_OPERATOR,
            "--no-hooks", "--wait=false", "--timeout", "120s",
        )  # fmt: skip


@pytest.fixture
def release(helm_bin: Path, kube_control_plane: ControlPlane, kube_namespace: str) -> Iterator[Release]:
    rel = Release(helm_bin, kube_control_plane, kube_namespace)
    rel.notes = rel.install_or_upgrade("install")
    yield rel
    rel.run("uninstall", rel.name, "--no-hooks", "--wait=false")


def api_key(core: k8s_client.CoreV1Api, release: Release) -> str:
    secret = core.read_namespaced_secret(f"{release.name}-jobqueue-api-key", release.namespace)
    return base64.b64decode(secret.data["API_KEY"]).decode()


def can(
    auth: k8s_client.AuthorizationV1Api,
    release: Release,
    verb: str,
    resource: str,
    group: str = "",
    subresource: str = "",
    name: str = "",
) -> bool:
    review = k8s_client.V1SubjectAccessReview(
        spec=k8s_client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{release.namespace}:{release.name}-jobqueue-operator",
            resource_attributes=k8s_client.V1ResourceAttributes(
                namespace=release.namespace,
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource,
                name=name or None,
            ),
        )
    )
    return bool(auth.create_subject_access_review(review).status.allowed)


def test_install_creates_every_component(release: Release, kube_api: k8s_client.ApiClient) -> None:
    apps = k8s_client.AppsV1Api(kube_api)
    deployments = {d.metadata.name for d in apps.list_namespaced_deployment(release.namespace).items}
    prefix = f"{release.name}-jobqueue"
    assert deployments >= {f"{prefix}-{c}" for c in ("api", "scheduler", "recorder", "operator")}
    statefulsets = {s.metadata.name for s in apps.list_namespaced_stateful_set(release.namespace).items}
    assert statefulsets == {f"{prefix}-redis", f"{prefix}-postgresql"}
    custom = k8s_client.CustomObjectsApi(kube_api)
    pools = custom.list_namespaced_custom_object("jobqueue.dev", "v1alpha1", release.namespace, "workerpools")
    assert [p["metadata"]["name"] for p in pools["items"]] == ["demo-workers"]
    extensions = k8s_client.ApiextensionsV1Api(kube_api)
    crds = {c.metadata.name for c in extensions.list_custom_resource_definition().items}
    assert {"jobqueues.jobqueue.dev", "workerpools.jobqueue.dev", "recurringtasks.jobqueue.dev"} <= crds
    # Operator replicas run peered: kopf's CRDs (crds/peering/) and the release's peering object
    # (cluster-scoped: the all-on values watch every namespace).
    assert {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"} <= crds
    peering = f"{release.namespace}-{prefix}-operator"  # cluster-scoped: the namespace is in the name
    custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", peering)


def test_notes_warn_about_the_quick_start_stores_and_say_what_to_run(release: Release) -> None:
    assert "NOT highly available" in release.notes
    assert f"helm test {release.name} -n {release.namespace}" in release.notes
    assert f"connectionSecretName: {release.name}-jobqueue-connection" in release.notes


def test_operator_may_do_what_it_needs_and_nothing_more(
    release: Release, kube_api: k8s_client.ApiClient
) -> None:
    auth = k8s_client.AuthorizationV1Api(kube_api)
    # Exactly what the operator's code calls (tests/k8s/operator_rbac.py; a unit test keeps the chart equal).
    assert can(auth, release, "patch", "workerpools", "jobqueue.dev", "status")
    assert can(auth, release, "create", "deployments", "apps")
    assert can(auth, release, "patch", "deployments", "apps", "scale")
    assert can(auth, release, "delete", "pods")
    assert can(auth, release, "create", "poddisruptionbudgets", "policy")
    # Nothing it does not call: no Secret at all (pods get the connection Secret by reference), no
    # Deployment deletes (owner references clean up), no scale subresource of its own resources.
    assert not can(auth, release, "get", "secrets")
    assert not can(auth, release, "list", "secrets")
    assert not can(auth, release, "delete", "deployments", "apps")
    assert not can(auth, release, "update", "workerpools", "jobqueue.dev", "scale")
    assert not can(auth, release, "create", "pods")
    assert not can(auth, release, "delete", "workerpools", "jobqueue.dev")
    peering = f"{release.namespace}-{release.name}-jobqueue-operator"
    assert can(auth, release, "patch", "clusterkopfpeerings", "kopf.dev", name=peering)
    assert can(auth, release, "watch", "clusterkopfpeerings", "kopf.dev")
    assert not can(auth, release, "patch", "clusterkopfpeerings", "kopf.dev", name="another-operator")


def test_upgrade_keeps_the_generated_api_key(release: Release, kube_api: k8s_client.ApiClient) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    before = api_key(core, release)
    release.install_or_upgrade("upgrade")
    assert api_key(core, release) == before


def test_install_with_hooks_runs_the_migration_job_to_completion(
    helm_bin: Path, kube_control_plane: ControlPlane, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    # kwok completes Job pods without running them, so this checks the hook's place in the install (its
    # Secret exists, Helm waits for it and deletes it on success), not the migration itself.
    rel = Release(helm_bin, kube_control_plane, kube_namespace)
    rel.run("install", rel.name, str(CHART), "--wait=false", "--timeout", "120s")
    try:
        assert json.loads(rel.run("status", rel.name, "-o", "json"))["info"]["status"] == "deployed"
        assert not k8s_client.BatchV1Api(kube_api).list_namespaced_job(kube_namespace).items  # hook-succeeded
    finally:
        rel.run("uninstall", rel.name, "--no-hooks", "--wait=false")


def test_reinstall_after_uninstall_finds_the_kept_store_passwords(
    helm_bin: Path, kube_control_plane: ControlPlane, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    # The in-chart stores' PVCs outlive `helm uninstall`; so does the Secret with the passwords their data
    # was set up with, and a reinstall under the same name adopts it instead of drawing new ones.
    rel = Release(helm_bin, kube_control_plane, kube_namespace)
    core = k8s_client.CoreV1Api(kube_api)
    secret = f"{rel.name}-jobqueue-connection"
    rel.run("install", rel.name, str(CHART), "--no-hooks", "--wait=false")
    before = core.read_namespaced_secret(secret, kube_namespace).data["REDIS_PASSWORD"]
    rel.run("uninstall", rel.name, "--no-hooks", "--wait")
    assert core.read_namespaced_secret(secret, kube_namespace).data["REDIS_PASSWORD"] == before
    rel.run("install", rel.name, str(CHART), "--no-hooks", "--wait=false")
    assert core.read_namespaced_secret(secret, kube_namespace).data["REDIS_PASSWORD"] == before
    rel.run("uninstall", rel.name, "--no-hooks", "--wait=false")
