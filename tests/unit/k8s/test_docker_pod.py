"""The docker node's pure decisions (tests/k8s/docker_pod.py): what a kubelet would give a container."""

from __future__ import annotations

from typing import Any

import pytest

from k8s.docker_pod import (
    ApiServer,
    PodConfigError,
    Service,
    command_line,
    container_env,
    expand,
    host_entries,
    pod_phase,
    resource_flags,
    security_flags,
    service_env,
)

pytestmark = pytest.mark.timeout(10)
SECRETS = {"conn": {"JOBQUEUE_REDIS_URL": "redis://127.0.0.1:1/0", "bad-name!": "x"}}
CONFIG_MAPS = {"settings": {"LEVEL": "debug"}}
API = ApiServer("127.0.0.1", 6443)


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p-1", "namespace": "ns", "uid": "u-1", "labels": {"app": "jq"}},
        "spec": {"nodeName": "n", "serviceAccountName": "sa", "containers": [], **spec},
        "status": {},
    }


def env_of(container: dict[str, Any], services: list[Service] | None = None, **spec: Any) -> dict[str, str]:
    return container_env(
        pod(**spec), container, SECRETS.get, CONFIG_MAPS.get, service_env(services or [], "ns", API)
    )


def test_env_from_then_env_wins_then_service_links_fill_the_rest() -> None:
    container = {
        "name": "c",
        "envFrom": [{"secretRef": {"name": "conn"}}, {"configMapRef": {"name": "settings"}, "prefix": "CM_"}],
        "env": [
            {"name": "JOBQUEUE_REDIS_URL", "value": "redis://override"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "URL", "value": "$(JOBQUEUE_REDIS_URL)/x $$(POD) $(UNDEFINED)"},
        ],
    }
    env = env_of(container, [Service("ns", "jobqueue-api", (("http", 8000, "TCP"),))])
    assert env["JOBQUEUE_REDIS_URL"] == "redis://override"
    assert env["CM_LEVEL"] == "debug"
    assert "bad-name!" not in env  # not a valid variable name: skipped, as a kubelet does
    assert (env["POD"], env["APP"]) == ("p-1", "jq")
    assert env["URL"] == "redis://override/x $(POD) $(UNDEFINED)"
    # The Service links a kubelet adds: a Service named <release>-api sets <RELEASE>_API_PORT.
    assert env["JOBQUEUE_API_PORT"] == "tcp://127.0.0.1:8000"
    assert env["JOBQUEUE_API_SERVICE_PORT_HTTP"] == "8000"
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "6443")


def test_explicit_env_beats_a_service_link_and_links_can_be_switched_off() -> None:
    services = [Service("ns", "jobqueue-api", (("http", 80, "TCP"),))]
    container = {"name": "c", "env": [{"name": "JOBQUEUE_API_PORT", "value": "8000"}]}
    assert env_of(container, services)["JOBQUEUE_API_PORT"] == "8000"
    assert "JOBQUEUE_API_SERVICE_HOST" not in env_of({"name": "c"}, services, enableServiceLinks=False)


def test_a_missing_secret_is_a_config_error_unless_optional() -> None:
    missing = {"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}
    with pytest.raises(PodConfigError, match='secret "nope" not found'):
        env_of({"name": "c", "env": [missing]})
    optional = {"name": "X", "valueFrom": {"secretKeyRef": {"name": "conn", "key": "k", "optional": True}}}
    assert "X" not in env_of({"name": "c", "env": [optional]})


def test_run_as_non_root_is_checked_against_the_image_user() -> None:
    strict = {"name": "c", "securityContext": {"runAsNonRoot": True}}
    assert security_flags(pod(), strict, "10001:10001") == []
    with pytest.raises(PodConfigError, match="non-numeric user"):
        security_flags(pod(), strict, "app")
    with pytest.raises(PodConfigError, match="non-root"):
        security_flags(pod(), strict, "")


def test_security_context_becomes_docker_flags_with_the_container_winning() -> None:
    spec = {
        "securityContext": {"runAsUser": 1, "runAsGroup": 2, "fsGroup": 3, "readOnlyRootFilesystem": False}
    }
    container = {
        "name": "c",
        "securityContext": {
            "runAsUser": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    flags = security_flags(pod(**spec), container, "")
    assert flags == [
        "--user", "10001:2", "--group-add", "3", "--read-only",
        "--security-opt", "no-new-privileges", "--cap-drop=ALL",
    ]  # fmt: skip


def test_command_replaces_the_entrypoint_and_args_the_cmd() -> None:
    assert command_line({"args": ["worker", "--queues", "$(Q)"]}, {"Q": "demo"}) == (
        [],
        ["worker", "--queues", "demo"],
    )
    entry, trailing = command_line({"command": ["tini", "--", "sh", "-c"], "args": ["echo $HOME"]}, {})
    assert (entry, trailing) == (["--entrypoint", "tini"], ["--", "sh", "-c", "echo $HOME"])


def test_service_names_resolve_to_loopback_short_names_only_in_the_pod_namespace() -> None:
    services = [Service("ns", "api", ()), Service("other", "db", ())]
    entries = host_entries(services, "ns", pod(hostAliases=[{"ip": "127.0.0.2", "hostnames": ["x"]}]))
    assert "api:127.0.0.1" in entries and "api.ns.svc.cluster.local:127.0.0.1" in entries
    assert "db.other.svc:127.0.0.1" in entries and "db:127.0.0.1" not in entries
    assert "x:127.0.0.2" in entries


def test_limits_and_phases() -> None:
    assert resource_flags({"resources": {"limits": {"memory": "256Mi", "cpu": "500m"}}}) == [
        "--memory", str(256 * 2**20), "--cpus", "0.500",
    ]  # fmt: skip
    assert expand("$$", {}) == "$"
    assert pod_phase("Never", [0, 0], init_failed=False) == "Succeeded"
    assert pod_phase("Never", [0, 1], init_failed=False) == "Failed"
    assert pod_phase("Never", [0, None], init_failed=False) == "Running"
    assert pod_phase("Always", [0], init_failed=False) == "Running"
    assert pod_phase("OnFailure", [0], init_failed=True) == "Failed"
