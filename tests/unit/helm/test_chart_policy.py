"""What the chart promises an operator of the cluster: hardened pods, least-privilege RBAC, hooks in the
right order, stable generated secrets, and the quick-start stores marked as such."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helm.fixtures import CHART, KUBE_VERSION, VALUES_FILES, render, run_helm
from k8s import api_rbac, operator_rbac

pytestmark = pytest.mark.timeout(300)
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    specs = {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] in WORKLOADS
    }
    specs.update({f"Pod/{d['metadata']['name']}": d["spec"] for d in docs if d["kind"] == "Pod"})
    return specs


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("values", VALUES_FILES)
def test_every_container_is_hardened_and_has_requests(helm_bin: Path, values: str) -> None:
    for where, spec in pod_specs(render(helm_bin, VALUES_FILES[values])).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert "memory" in container["resources"]["limits"], where


@pytest.mark.parametrize("values", VALUES_FILES)
def test_no_pod_gets_service_link_variables(helm_bin: Path, values: str) -> None:
    # A Service named <release>-api would inject JOBQUEUE_API_PORT=tcp://..., inside our settings prefix.
    for where, spec in pod_specs(render(helm_bin, VALUES_FILES[values])).items():
        assert spec["enableServiceLinks"] is False, where


def test_only_the_operator_and_the_pool_managing_api_get_a_kubernetes_api_token(helm_bin: Path) -> None:
    for where, spec in pod_specs(render(helm_bin, None)).items():
        expected = where.endswith("-operator") or where == "Deployment/rel-jobqueue-api"
        assert spec.get("automountServiceAccountToken", True) is expected, where
    off = render(helm_bin, None, "--set", "api.manageWorkerPools=false")
    for where, spec in pod_specs(off).items():
        assert spec.get("automountServiceAccountToken", True) is where.endswith("-operator"), where
    assert [r["metadata"]["name"] for r in by_kind(off, "Role")] == ["rel-jobqueue-operator"]


def operator_role(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (role,) = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] == "rel-jobqueue-operator"]
    return role


def test_api_manages_workerpools_with_exactly_the_rules_its_tests_run_with(helm_bin: Path) -> None:
    docs = render(helm_bin, None)
    (role,) = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] == "rel-jobqueue-api"]
    assert role["metadata"]["namespace"] == "jq"
    assert role["rules"] == api_rbac.RULES
    (binding,) = [b for b in by_kind(docs, "RoleBinding") if b["metadata"]["name"] == "rel-jobqueue-api"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-jobqueue-api", "namespace": "jq"}]
    (api,) = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-jobqueue-api"]
    spec = api["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "rel-jobqueue-api"
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["JOBQUEUE_API_POOLS_BACKEND"] == "kubernetes"
    assert env["JOBQUEUE_API_POOLS_NAMESPACE"] == "jq"
    assert env["JOBQUEUE_API_POOLS_DEFAULT_IMAGE"]


def test_api_probes_liveness_on_healthz_and_readiness_on_readyz(helm_bin: Path) -> None:
    (api,) = [
        d
        for d in by_kind(render(helm_bin, None), "Deployment")
        if d["metadata"]["name"] == "rel-jobqueue-api"
    ]
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_operator_rbac_is_namespaced_and_least_privilege_by_default(helm_bin: Path) -> None:
    docs = render(helm_bin, None)
    # The one cluster-wide grant is read-only discovery of CRDs and namespaces, which kopf needs.
    (discovery,) = by_kind(docs, "ClusterRole")
    assert discovery["metadata"]["name"] == "jq-rel-jobqueue-operator-discovery"
    assert {verb for rule in discovery["rules"] for verb in rule["verbs"]} <= {"get", "list", "watch"}
    assert {r for rule in discovery["rules"] for r in rule["resources"]} == {
        "customresourcedefinitions",
        "namespaces",
    }
    role = operator_role(docs)
    assert role["metadata"]["namespace"] == "jq"
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert not any("*" in item for item in granted)
    # Exactly the rules every operator test on the control plane runs with alone (tests/k8s), so the
    # chart grants nothing those tests do not show the operator needs, and misses nothing they need.
    assert granted - {item for item in granted if item[0] == "kopf.dev"} == {
        (group, resource, verb)
        for rule in operator_rbac.RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert ("", "secrets", "get") not in granted
    assert not any(
        resource in {"customresourcedefinitions", "clusterroles", "roles"} for _, resource, _ in granted
    )


def test_workerpool_pod_policy_reaches_the_operator(helm_bin: Path) -> None:
    env = {
        e["name"]: e.get("value")
        for e in operator_deployment(render(helm_bin, None))["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert env["JOBQUEUE_OPERATOR_POD_ALLOW_PRIVILEGED"] == "false"
    assert env["JOBQUEUE_OPERATOR_POD_ALLOW_HOST_PATH"] == "false"
    assert json.loads(env["JOBQUEUE_OPERATOR_POD_SERVICE_ACCOUNTS"]) == []
    assert json.loads(env["JOBQUEUE_OPERATOR_POD_SECRETS"]) == ["rel-jobqueue-connection"]
    docs = render(
        helm_bin, None, "--set", "operator.workerPoolPolicy.allowRoot=true",
        "--set", "operator.workerPoolPolicy.serviceAccountNames={wi}",
        "--set", "operator.workerPoolPolicy.secretNames={tls}",
    )  # fmt: skip
    env = {
        e["name"]: e.get("value")
        for e in operator_deployment(docs)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["JOBQUEUE_OPERATOR_POD_ALLOW_ROOT"] == "true"
    assert json.loads(env["JOBQUEUE_OPERATOR_POD_SERVICE_ACCOUNTS"]) == ["wi"]
    assert json.loads(env["JOBQUEUE_OPERATOR_POD_SECRETS"]) == ["rel-jobqueue-connection", "tls"]


def operator_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (operator,) = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == "rel-jobqueue-operator"]
    return operator


def test_operator_replicas_run_peered_with_least_privilege_on_their_peering_object(helm_bin: Path) -> None:
    docs = render(helm_bin, None, "--set", "operator.replicas=2")
    operator = operator_deployment(docs)
    assert operator["spec"]["replicas"] == 2
    assert operator["spec"]["strategy"]["type"] == "RollingUpdate"
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert "--peering=rel-jobqueue-operator" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["JOBQUEUE_OPERATOR_PEERING_LIFETIME_SECONDS"]["value"] == "30"
    (peering,) = by_kind(docs, "KopfPeering")
    assert (peering["metadata"]["name"], peering["metadata"]["namespace"]) == ("rel-jobqueue-operator", "jq")
    role = operator_role(docs)
    peering_rules = [r for r in role["rules"] if r["apiGroups"] == ["kopf.dev"]]
    assert {(tuple(r["verbs"]), tuple(r.get("resourceNames", []))) for r in peering_rules} == {
        (("list", "watch"), ()),
        (("get", "patch"), ("rel-jobqueue-operator",)),
    }
    assert all(r["resources"] == ["kopfpeerings"] for r in peering_rules)


def test_standalone_operator_is_one_replica_replaced_with_recreate(helm_bin: Path) -> None:
    docs = render(helm_bin, None, "--set", "operator.peering.enabled=false")
    operator = operator_deployment(docs)
    assert (operator["spec"]["replicas"], operator["spec"]["strategy"]["type"]) == (1, "Recreate")
    assert not by_kind(docs, "KopfPeering")
    role = operator_role(docs)
    assert not [r for r in role["rules"] if "kopf.dev" in r["apiGroups"]]
    out = run_helm(
        helm_bin, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "operator.peering.enabled=false", "--set", "operator.replicas=2", check=False,
    )  # fmt: skip
    assert "operator.replicas > 1 needs operator.peering.enabled" in out


def test_watching_all_namespaces_switches_to_cluster_roles(helm_bin: Path) -> None:
    docs = render(helm_bin, None, "--set", "operator.watchAllNamespaces=true")
    assert [r["metadata"]["name"] for r in by_kind(docs, "Role")] == ["rel-jobqueue-api"]  # pools only
    names = {d["metadata"]["name"] for d in by_kind(docs, "ClusterRole")}
    assert names == {"jq-rel-jobqueue-operator", "jq-rel-jobqueue-operator-discovery"}
    operator = operator_deployment(docs)
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in args and "--peering=jq-rel-jobqueue-operator" in args
    (peering,) = by_kind(docs, "ClusterKopfPeering")
    assert "namespace" not in peering["metadata"]
    assert peering["metadata"]["name"] == "jq-rel-jobqueue-operator"


CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "ClusterKopfPeering"}


@pytest.mark.parametrize("watch_all", ["false", "true"])
def test_same_named_releases_in_two_namespaces_share_no_cluster_scoped_object(
    helm_bin: Path, watch_all: str
) -> None:
    # "jobqueue" in staging and in prod: the second install would fail on the first one's ClusterRole.
    def cluster_scoped(namespace: str) -> set[tuple[str, str]]:
        docs = render(
            helm_bin, None, "--namespace", namespace, "--set", f"operator.watchAllNamespaces={watch_all}"
        )
        return {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in CLUSTER_SCOPED}

    staging, prod = cluster_scoped("staging"), cluster_scoped("prod")
    assert staging and prod and not staging & prod


@pytest.mark.parametrize(
    ("values", "hook"),
    [("default", "post-install,pre-upgrade"), ("external-stores", "pre-install,pre-upgrade")],
)
def test_migrations_run_before_new_code_meets_the_database(helm_bin: Path, values: str, hook: str) -> None:
    # External database: before install and upgrade. In-chart PostgreSQL: it does not exist before
    # install, so the first migration runs right after it.
    (job,) = by_kind(render(helm_bin, VALUES_FILES[values]), "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == hook
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["--log-format", "json", "migrate"]


def test_external_stores_read_urls_from_the_existing_secret(helm_bin: Path) -> None:
    docs = render(helm_bin, VALUES_FILES["external-stores"])
    assert not by_kind(docs, "StatefulSet")
    assert not by_kind(docs, "Secret")  # neither connection nor API key is generated
    for where, spec in pod_specs(docs).items():
        env = {e["name"]: e for e in spec["containers"][0]["env"]}
        assert env["JOBQUEUE_REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "jobqueue-connection", where


def test_external_stores_without_a_secret_fail_with_the_fix(helm_bin: Path) -> None:
    out = run_helm(
        helm_bin, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "redis.enabled=false", "--set", "postgresql.enabled=false", check=False,
    )  # fmt: skip
    assert "connection.existingSecret is required" in out


def test_quick_start_redis_persists_with_aof_and_never_evicts(helm_bin: Path) -> None:
    docs = render(helm_bin, None)
    (redis,) = [d for d in by_kind(docs, "StatefulSet") if d["metadata"]["name"] == "rel-jobqueue-redis"]
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "8Gi"
    template = (CHART / "templates/redis.yaml").read_text()
    assert "NOT HIGHLY AVAILABLE" in template


def test_generated_api_key_is_a_secret_and_the_api_reads_it(helm_bin: Path) -> None:
    docs = render(helm_bin, None)
    (key_secret,) = [d for d in by_kind(docs, "Secret") if d["metadata"]["name"] == "rel-jobqueue-api-key"]
    key = key_secret["stringData"]["API_KEY"]
    assert len(key) == 40
    assert key_secret["stringData"]["JOBQUEUE_API_KEYS"] == f"{key}:admin"
    # Without a cluster, lookup finds nothing and a fresh key is drawn: two renders differ.
    (again,) = [
        d
        for d in by_kind(render(helm_bin, None), "Secret")
        if d["metadata"]["name"] == "rel-jobqueue-api-key"
    ]
    assert again["stringData"]["API_KEY"] != key


def test_helm_test_pod_is_a_test_hook(helm_bin: Path) -> None:
    (pod,) = by_kind(render(helm_bin, None), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
