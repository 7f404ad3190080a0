"""The worker Deployment built from a WorkerPool spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from jobqueue_operator.manifests import Owner, selector_string, worker_deployment
from jobqueue_operator.settings import OperatorSettings
from jobqueue_operator.spec import WorkerPoolSpec

EXAMPLE = Path(__file__).resolve().parents[3] / "crds" / "examples" / "workerpool.yaml"
OWNER = Owner(name="email-workers", namespace="mail", uid="0b5f7c1e-1111-2222-3333-444455556666")


def example_spec(**changes: Any) -> WorkerPoolSpec:
    spec = yaml.safe_load(EXAMPLE.read_text())["spec"]
    spec.update(changes)
    return WorkerPoolSpec.model_validate(spec)


def test_deployment_is_owned_by_the_pool_and_selects_its_pods() -> None:
    d = worker_deployment(OWNER, example_spec(), replicas=3)
    assert d["metadata"]["name"] == "email-workers"
    assert d["metadata"]["namespace"] == "mail"
    (ref,) = d["metadata"]["ownerReferences"]
    assert ref == {
        "apiVersion": "jobqueue.dev/v1alpha1",
        "kind": "WorkerPool",
        "name": "email-workers",
        "uid": OWNER.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert d["spec"]["replicas"] == 3
    selector = d["spec"]["selector"]["matchLabels"]
    assert selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
    assert selector_string("email-workers") == "jobqueue.dev/pool=email-workers"


def test_worker_container_runs_the_pool_with_pod_name_and_connection_secret() -> None:
    d = worker_deployment(OWNER, example_spec(), replicas=1)
    pod = d["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "quickstart-worker:0.1.0"
    assert container["args"] == [
        "worker", "--app", "tasks:app", "--queues", "emails,default", "--concurrency", "8",
        "--pool", "thread", "--grace", "115",
    ]  # fmt: skip
    assert container["env"][0] == {
        "name": "POD_NAME",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
    }
    assert {"name": "ACME_SMTP_HOST", "value": "smtp.internal"} in container["env"]
    assert container["envFrom"] == [{"secretRef": {"name": "jobqueue-connection"}}]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert pod["terminationGracePeriodSeconds"] == 120
    assert container["securityContext"]["runAsNonRoot"] is True
    # Link variables of a Service named <release>-api would land inside the JOBQUEUE_ settings prefix.
    assert pod["enableServiceLinks"] is False


def test_a_log_format_other_than_auto_is_the_workers_first_argument() -> None:
    # A global option of `jobqueue`, so before the subcommand; auto adds nothing (no rollout on upgrade).
    (container,) = worker_deployment(OWNER, example_spec(), 1, "json")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["args"][:3] == ["--log-format", "json", "worker"]
    (container,) = worker_deployment(OWNER, example_spec(), 1, "auto")["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["args"][0] == "worker"


def test_an_external_redis_password_reaches_the_worker_from_its_secret_never_as_a_value() -> None:
    (container,) = worker_deployment(OWNER, example_spec(), 1, "auto", ("redis-auth", "pw"))["spec"][
        "template"
    ]["spec"]["containers"]
    [entry] = [e for e in container["env"] if e["name"] == "JOBQUEUE_REDIS_PASSWORD"]
    assert entry == {
        "name": "JOBQUEUE_REDIS_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "pw"}},
    }
    # Without one the pod template is as before (no rollout of existing pools on upgrade).
    (plain,) = worker_deployment(OWNER, example_spec(), 1)["spec"]["template"]["spec"]["containers"]
    assert all(e["name"] != "JOBQUEUE_REDIS_PASSWORD" for e in plain["env"])


def test_pod_template_metadata_merges_but_cannot_move_the_pod_out_of_its_pool() -> None:
    spec = example_spec(
        podTemplate={
            "metadata": {
                "labels": {"team": "mail", "jobqueue.dev/pool": "hijack"},
                "annotations": {"a": "b"},
            },
            "spec": {"nodeSelector": {"pool": "workers"}, "containers": [{"name": "other", "image": "x"}]},
        }
    )
    d = worker_deployment(OWNER, spec, replicas=1)
    template = d["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "mail"
    assert template["metadata"]["labels"]["jobqueue.dev/pool"] == "email-workers"
    assert template["metadata"]["annotations"] == {
        "a": "b",
        "kubectl.kubernetes.io/default-container": "worker",
    }
    assert template["spec"]["nodeSelector"] == {"pool": "workers"}
    # The worker first, the template's own containers kept (before, a sidecar was silently dropped).
    assert [c["name"] for c in template["spec"]["containers"]] == ["worker", "other"]


def test_minimal_spec_uses_crd_defaults() -> None:
    spec = WorkerPoolSpec.model_validate({"queues": ["default"], "image": "img:1", "app": "m:app"})
    d = worker_deployment(OWNER, spec, replicas=1)
    (container,) = d["spec"]["template"]["spec"]["containers"]
    assert container["args"][-6:] == ["--concurrency", "4", "--pool", "process", "--grace", "55"]
    assert "resources" not in container
    assert spec.autoscaling.max_replicas == 10


def test_the_operator_reads_the_workers_redis_password_secret_from_its_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert OperatorSettings().worker_redis_password() is None
    monkeypatch.setenv("JOBQUEUE_OPERATOR_WORKER_REDIS_PASSWORD_SECRET_NAME", "redis-auth")
    assert OperatorSettings().worker_redis_password() == ("redis-auth", "password")
    monkeypatch.setenv("JOBQUEUE_OPERATOR_WORKER_REDIS_PASSWORD_SECRET_KEY", "pw")
    assert OperatorSettings().worker_redis_password() == ("redis-auth", "pw")
