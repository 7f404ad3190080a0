"""hostNetwork and kubernetesApi values: for a cluster whose pods reach the stores and the API server only on
a node's loopback (no kube-proxy, no cluster DNS; the test cluster's real kubelet node), every jobqueue pod
shares the node's network, the in-cluster Kubernetes clients are told the API server's real address, and
the `helm test` pod calls the API on 127.0.0.1. Off by default: nothing changes for a normal cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helm.fixtures import CHART, KUBE_VERSION, VALUES_FILES, render, run_helm

pytestmark = pytest.mark.timeout(120)

HOST_NETWORK = ("--set", "hostNetwork=true", "--set", "operator.workerPoolPolicy.allowHostNamespaces=true")
API_SERVER = ("--set", "kubernetesApi.serviceHost=127.0.0.1", "--set", "kubernetesApi.servicePort=6443")
# The chart's own Kubernetes clients; the other pods get no token and never call the API server.
API_CLIENTS = {"operator", "api", "cleanup"}
STORES = {"redis", "postgresql"}
JOBQUEUE_PODS = {"api", "scheduler", "recorder", "migrate", "operator", "cleanup", "submit", "workerpool"}


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every pod spec the chart makes, by its first container's name (WorkerPool: its podTemplate)."""
    found = {}
    for doc in docs:
        if doc["kind"] == "Pod":
            spec = doc["spec"]
        elif doc["kind"] == "WorkerPool":
            found["workerpool"] = doc["spec"].get("podTemplate", {}).get("spec", {})
            continue
        else:
            spec = doc.get("spec", {}).get("template", {}).get("spec")
            if not spec:
                continue
        found[spec["containers"][0]["name"]] = spec
    return found


def env_of(spec: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in spec["containers"][0].get("env", [])}


def test_by_default_no_pod_uses_host_networking_or_overrides_the_api_server(helm_bin: Path) -> None:
    specs = pod_specs(render(helm_bin, VALUES_FILES["all-on"]))
    assert {"api", "scheduler", "recorder", "migrate", "operator", "cleanup", "submit", "workerpool"} <= set(
        specs
    )
    for name, spec in specs.items():
        assert "hostNetwork" not in spec and "dnsPolicy" not in spec, name
        assert not {"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"} & set(
            env_of(spec) if name != "workerpool" else {}
        ), name
    assert env_of(specs["submit"])["API"] == "http://rel-jobqueue-api:80"


def test_host_network_puts_every_jobqueue_pod_and_the_example_workers_on_the_nodes_network(
    helm_bin: Path,
) -> None:
    specs = pod_specs(render(helm_bin, VALUES_FILES["all-on"], *HOST_NETWORK, "--set", "api.port=8123"))
    jobqueue_pods = set(specs) - STORES
    assert {
        "api",
        "scheduler",
        "recorder",
        "migrate",
        "operator",
        "cleanup",
        "submit",
        "workerpool",
    } <= jobqueue_pods
    for name in jobqueue_pods:
        assert specs[name]["hostNetwork"] is True, name
        # ClusterFirst would silently drop cluster DNS for a host-network pod.
        assert specs[name]["dnsPolicy"] == "ClusterFirstWithHostNet", name
    for name in STORES & set(specs):
        assert "hostNetwork" not in specs[name], name
    # The helm test pod calls the API where it listens on the node, not through the Service.
    assert env_of(specs["submit"])["API"] == "http://127.0.0.1:8123"
    # The example pool keeps the release's scheduling knobs next to host networking.
    assert specs["workerpool"]["tolerations"] == specs["api"]["tolerations"]


def test_kubernetes_api_overrides_reach_only_the_charts_kubernetes_clients(helm_bin: Path) -> None:
    specs = pod_specs(render(helm_bin, VALUES_FILES["all-on"], *API_SERVER))
    for name, spec in specs.items():
        if name == "workerpool":
            continue
        env = env_of(spec)
        if name in API_CLIENTS:
            assert env["KUBERNETES_SERVICE_HOST"] == "127.0.0.1", name
            assert env["KUBERNETES_SERVICE_PORT"] == "6443", name
        else:
            assert "KUBERNETES_SERVICE_HOST" not in env, name


def test_host_network_with_the_examples_needs_the_pool_policy_to_allow_it(helm_bin: Path) -> None:
    out = run_helm(
        helm_bin, "template", "rel", str(CHART), "-f", str(VALUES_FILES["all-on"]), "--kube-version",
        KUBE_VERSION, "--set", "hostNetwork=true", check=False,
    )  # fmt: skip
    assert "operator.workerPoolPolicy.allowHostNamespaces" in out, out


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("hostNetwork=yes", "hostNetwork"),
        ("kubernetesApi.servicePort=99999", "kubernetesApi"),
        ("kubernetesApi.servicePort=6443x", "kubernetesApi"),
        ("kubernetesApi.serviceHost=evil\\,host", "kubernetesApi"),
        ("kubernetesApi.extra=1", "kubernetesApi"),
    ],
)
def test_malformed_values_are_refused_by_the_schema_naming_the_field(
    helm_bin: Path, value: str, field: str
) -> None:
    out = run_helm(
        helm_bin, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, "--set", value, check=False
    )
    assert "values don't meet the specifications of the schema" in out and field in out, out
