"""A WorkerPool's podTemplate merged around the operator's worker container (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from jobqueue.errors import JobQueueError, ValidationError
from jobqueue_operator.manifests import Owner, pod_disruption_budget, worker_deployment
from jobqueue_operator.pod_template import InvalidPodTemplate, liveness_probe
from jobqueue_operator.spec import WorkerPoolSpec

EXAMPLE = Path(__file__).resolve().parents[3] / "crds" / "examples" / "workerpool.yaml"
OWNER = Owner(name="email-workers", namespace="mail", uid="0b5f7c1e-1111-2222-3333-444455556666")
SIDECAR = {"name": "proxy", "image": "envoy:1", "ports": [{"containerPort": 9901}]}
CONFIG = {"name": "settings", "configMap": {"name": "acme-settings"}}


def spec_with(template_spec: dict[str, Any], **changes: Any) -> WorkerPoolSpec:
    spec = yaml.safe_load(EXAMPLE.read_text())["spec"]
    spec.update(changes, podTemplate={"spec": template_spec})
    return WorkerPoolSpec.model_validate(spec)


def pod_of(template_spec: dict[str, Any], **changes: Any) -> dict[str, Any]:
    pod = worker_deployment(OWNER, spec_with(template_spec, **changes), replicas=1)["spec"]["template"][
        "spec"
    ]
    assert isinstance(pod, dict)
    return pod


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in pod["containers"]}


def test_sidecars_init_containers_volumes_and_scheduling_are_kept() -> None:
    scheduling = {
        "serviceAccountName": "acme-workers",
        "nodeSelector": {"pool": "workers"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}
        ],
        "priorityClassName": "batch-low",
        "imagePullSecrets": [{"name": "registry"}],
    }
    init = {"name": "migrate", "image": "acme/tasks:1", "command": ["true"]}
    pod = pod_of({**scheduling, "containers": [SIDECAR], "initContainers": [init], "volumes": [CONFIG]})
    assert [c["name"] for c in pod["containers"]] == ["worker", "proxy"]
    assert containers(pod)["proxy"] == SIDECAR
    assert pod["initContainers"] == [init]
    assert CONFIG in pod["volumes"]
    assert scheduling.items() <= pod.items()


def test_worker_container_gets_the_templates_additions_but_keeps_image_args_and_identity() -> None:
    worker_part = {
        "name": "worker",
        "volumeMounts": [{"name": "settings", "mountPath": "/etc/acme", "readOnly": True}],
        "envFrom": [{"configMapRef": {"name": "acme-env"}}],
        "env": [{"name": "ACME_MODE", "value": "batch"}],
        "ports": [{"name": "metrics", "containerPort": 9100}],
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "2"]}}},
        "readinessProbe": {"tcpSocket": {"port": 9100}},
        "resources": {"requests": {"cpu": "1", "ephemeral-storage": "1Gi"}},
    }
    worker = containers(pod_of({"containers": [worker_part, SIDECAR], "volumes": [CONFIG]}))["worker"]
    assert worker["image"] == "quickstart-worker:0.1.0"
    assert worker["args"][:3] == ["worker", "--app", "tasks:app"]
    assert worker["env"][0]["name"] == "POD_NAME"
    assert {"name": "ACME_MODE", "value": "batch"} in worker["env"]
    assert {"name": "ACME_SMTP_HOST", "value": "smtp.internal"} in worker["env"]
    # The connection Secret is the last envFrom source, so for a key in both it wins.
    assert worker["envFrom"] == [
        {"configMapRef": {"name": "acme-env"}},
        {"secretRef": {"name": "jobqueue-connection"}},
    ]
    assert {"name": "settings", "mountPath": "/etc/acme", "readOnly": True} in worker["volumeMounts"]
    assert worker["ports"] == worker_part["ports"]
    assert worker["lifecycle"] == worker_part["lifecycle"]
    assert worker["readinessProbe"] == worker_part["readinessProbe"]
    # spec.resources (the dedicated field) wins per key; the template adds what it does not set.
    assert worker["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "1Gi"},
        "limits": {"memory": "512Mi"},
    }
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True


def test_writable_tmp_by_default_and_the_templates_own_tmp_replaces_it() -> None:
    pod = pod_of({})
    worker = containers(pod)["worker"]
    assert {"name": "jobqueue-tmp", "mountPath": "/tmp"} in worker["volumeMounts"]
    assert {"name": "jobqueue-tmp", "emptyDir": {}} in pod["volumes"]
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "JOBQUEUE_HEALTH_DIR", "value": "/tmp/jobqueue-health"} in worker["env"]

    scratch = {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}
    own_tmp = {"name": "worker", "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/"}]}
    own = pod_of({"containers": [own_tmp], "volumes": [scratch]})
    assert own["volumes"] == [scratch]
    assert containers(own)["worker"]["volumeMounts"] == [{"name": "scratch", "mountPath": "/tmp/"}]


def test_liveness_probe_runs_worker_health_unless_the_template_has_one() -> None:
    worker = containers(pod_of({}, health={"heartbeatStaleSeconds": 45, "leaseOrphanSeconds": 90}))["worker"]
    assert worker["livenessProbe"] == liveness_probe(45)
    assert worker["livenessProbe"]["exec"]["command"] == ["jobqueue", "worker-health", "--max-age", "45"]
    own = {"httpGet": {"path": "/alive", "port": 9100}}
    worker = containers(pod_of({"containers": [{"name": "worker", "livenessProbe": own}]}))["worker"]
    assert worker["livenessProbe"] == own


T = "spec.podTemplate.spec."
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"containers": [{"name": "worker", "image": "evil:1"}]}, T + "containers[worker].image"),
    ({"containers": [{"name": "worker", "args": ["sh"]}]}, T + "containers[worker].args"),
    ({"containers": [{"name": "worker", "command": ["sh"]}]}, T + "containers[worker].command"),
    ({"containers": [{"name": "worker", "securityContext": {}}]}, T + "containers[worker].securityContext"),
    (
        {"containers": [{"name": "worker", "env": [{"name": "POD_NAME"}]}]},
        T + "containers[worker].env[POD_NAME]",
    ),
    ({"volumes": [{"name": "jobqueue-tmp", "hostPath": {"path": "/"}}]}, T + "volumes[jobqueue-tmp]"),
    ({"volumes": [CONFIG, CONFIG]}, T + "volumes[settings]"),
    ({"containers": [SIDECAR, SIDECAR]}, T + "containers[proxy]"),
    ({"containers": [SIDECAR], "initContainers": [SIDECAR]}, T + "initContainers[proxy]"),
    ({"initContainers": [{"name": "worker", "image": "x"}]}, T + "initContainers[worker]"),
    (
        {"containers": [{"name": "worker", "volumeMounts": [{"name": "nowhere", "mountPath": "/x"}]}]},
        T + "containers[worker].volumeMounts[nowhere]",
    ),
    ({"containers": [{"image": "x"}]}, T + "containers[0].name"),
]


@pytest.mark.parametrize(("template", "field"), INVALID)
def test_templates_that_cannot_be_merged_whole_are_refused_naming_the_field(
    template: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidPodTemplate) as caught:
        pod_of(template)
    assert caught.value.field == field
    assert isinstance(caught.value, ValidationError)
    assert isinstance(caught.value, JobQueueError)


def test_identity_env_in_spec_env_is_refused() -> None:
    with pytest.raises(InvalidPodTemplate) as caught:
        pod_of({}, env=[{"name": "JOBQUEUE_HEALTH_DIR", "value": "/"}])
    assert caught.value.field == "spec.env[JOBQUEUE_HEALTH_DIR]"


def test_hostile_names_are_kept_verbatim_for_the_api_server_to_judge() -> None:
    odd = {"name": "side\x00car\udcff" + "x" * 10_000, "image": "i"}
    pod = pod_of({"containers": [odd]})
    assert pod["containers"][1] == odd


def test_disruption_budget_only_when_asked_for() -> None:
    assert pod_disruption_budget(OWNER, spec_with({})) is None
    budget = pod_disruption_budget(OWNER, spec_with({}, disruptionBudget={"maxUnavailable": "25%"}))
    assert budget is not None
    assert budget["apiVersion"] == "policy/v1"
    assert budget["metadata"]["name"] == "email-workers"
    assert budget["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert budget["spec"] == {
        "selector": {"matchLabels": {"jobqueue.dev/pool": "email-workers"}},
        "maxUnavailable": "25%",
    }
    budget = pod_disruption_budget(OWNER, spec_with({}, disruptionBudget={"minAvailable": 2}))
    assert budget is not None
    assert budget["spec"]["minAvailable"] == 2
