"""The WorkerPool pod policy (issue 15 #12): Pod Security "restricted" unless the chart allows more."""

from __future__ import annotations

from typing import Any

import pytest

from jobqueue_operator.manifests import Owner, worker_deployment
from jobqueue_operator.pod_policy import PodPolicy, pod_template_violations
from jobqueue_operator.settings import OperatorSettings
from jobqueue_operator.spec import WorkerPoolSpec

pytestmark = pytest.mark.timeout(10)

RESTRICTED = PodPolicy()
SECRET = "jobqueue-connection"


def violations(pod_spec: dict[str, Any], policy: PodPolicy = RESTRICTED, secret: str = SECRET) -> list[str]:
    return pod_template_violations(pod_spec, secret, policy)


def test_an_ordinary_template_is_allowed() -> None:
    sidecar = {
        "name": "proxy",
        "image": "envoy",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "envFrom": [{"secretRef": {"name": SECRET}}],
        "ports": [{"containerPort": 9000}],
    }
    spec = {
        "containers": [sidecar],
        "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "c", "secret": {"secretName": SECRET}}],
        "nodeSelector": {"pool": "workers"},
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "securityContext": {"runAsUser": 10001, "fsGroup": 10001},
    }
    assert violations(spec) == []
    assert violations({}) == []


@pytest.mark.parametrize(
    ("pod_spec", "expected"),
    [
        ({"hostNetwork": True}, "podTemplate.spec.hostNetwork is true"),
        ({"hostPID": True}, "podTemplate.spec.hostPID is true"),
        ({"hostIPC": True}, "podTemplate.spec.hostIPC is true"),
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "podTemplate.spec.volumes[0].hostPath"),
        (
            {"initContainers": [{"name": "i", "securityContext": {"privileged": True}}]},
            "podTemplate.spec.initContainers[0].securityContext.privileged is true",
        ),
        (
            {"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": True}}]},
            "podTemplate.spec.containers[0].securityContext.allowPrivilegeEscalation is true",
        ),
        (
            {"containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]},
            "capabilities.add has ['SYS_ADMIN']",
        ),
        ({"securityContext": {"runAsUser": 0}}, "podTemplate.spec.securityContext.runAsUser is 0"),
        ({"securityContext": {"runAsNonRoot": False}}, "runAsNonRoot is false"),
        ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, "seccompProfile is Unconfined"),
        ({"containers": [{"name": "c", "ports": [{"hostPort": 80}]}]}, "ports[0].hostPort is set"),
        ({"serviceAccountName": "cluster-admin-sa"}, "serviceAccountName 'cluster-admin-sa'"),
        ({"serviceAccount": "other"}, "serviceAccountName 'other'"),
        (
            {"volumes": [{"name": "s", "secret": {"secretName": "db-root"}}]},
            "volumes[0].secret names Secret 'db-root'",
        ),
        (
            {"volumes": [{"name": "p", "projected": {"sources": [{"secret": {"name": "tls"}}]}}]},
            "volumes[0].projected.sources[0].secret names Secret 'tls'",
        ),
        (
            {
                "containers": [
                    {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s"}}}]}
                ]
            },
            "containers[0].env[0].valueFrom.secretKeyRef names Secret 's'",
        ),
        (
            {"ephemeralContainers": [{"name": "e", "envFrom": [{"secretRef": {"name": "s"}}]}]},
            "ephemeralContainers[0].envFrom[0].secretRef names Secret 's'",
        ),
    ],
)
def test_host_access_and_other_identities_are_refused(pod_spec: dict[str, Any], expected: str) -> None:
    found = violations(pod_spec)
    assert len(found) == 1 and expected in found[0], found


def test_each_chart_value_allows_its_own_fields_only() -> None:
    spec = {
        "hostNetwork": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/var/log"}}],
        "containers": [{"name": "c", "securityContext": {"privileged": True, "runAsUser": 0}}],
        "serviceAccountName": "workload-identity",
    }
    assert len(violations(spec)) == 5
    everything = PodPolicy(
        allow_host_namespaces=True,
        allow_host_path=True,
        allow_privileged=True,
        allow_root=True,
        service_accounts=frozenset({"workload-identity"}),
    )
    assert violations(spec, everything) == []
    only_accounts = PodPolicy(service_accounts=frozenset({"workload-identity"}))
    assert len(violations(spec, only_accounts)) == 4


def test_connection_secret_limited_to_what_the_chart_allows() -> None:
    assert violations({}, secret="kube-system-token") == [
        "connectionSecretName 'kube-system-token' is not one the chart allows"
    ]
    assert violations({}, PodPolicy(secrets=frozenset({"release-connection"})), "release-connection") == []


def test_malformed_shapes_are_not_a_crash() -> None:
    # The CRD keeps podTemplate.spec open (x-kubernetes-preserve-unknown-fields): anything may arrive.
    odd: dict[str, Any] = {
        "volumes": "not a list",
        "containers": [None, 3, {"securityContext": "x"}],
        "securityContext": ["y"],
        "initContainers": [{"env": [None, {"valueFrom": 1}], "envFrom": [1]}],
    }
    assert violations(odd) == []


def test_settings_build_the_policy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_OPERATOR_POD_SERVICE_ACCOUNTS", '["wi"]')
    monkeypatch.setenv("JOBQUEUE_OPERATOR_POD_SECRETS", '["rel-connection"]')
    monkeypatch.setenv("JOBQUEUE_OPERATOR_POD_ALLOW_HOST_PATH", "true")
    policy = OperatorSettings().pod_policy()
    assert policy == PodPolicy(
        allow_host_path=True, service_accounts=frozenset({"wi"}), secrets=frozenset({"rel-connection"})
    )
    assert OperatorSettings.model_fields["pod_allow_privileged"].default is False


def test_deployment_pods_are_restricted_by_default_keeping_allowed_overrides() -> None:
    base = {"queues": ["q"], "image": "img", "app": "m:app"}
    owner = Owner("pool", "ns", "uid")
    pod = worker_deployment(owner, WorkerPoolSpec.model_validate(base), 1)["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    worker = pod["containers"][0]["securityContext"]
    assert worker["allowPrivilegeEscalation"] is False and worker["capabilities"] == {"drop": ["ALL"]}
    custom = {**base, "podTemplate": {"spec": {"securityContext": {"fsGroup": 2000}}}}
    pod = worker_deployment(owner, WorkerPoolSpec.model_validate(custom), 1)["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == 2000 and pod["securityContext"]["runAsNonRoot"] is True
