"""The CRDs on a real API server: accepted as valid CRDs, the examples accepted with defaults filled in,
invalid resources rejected with the CEL rule's message, and the WorkerPool scale subresource working the
way kubectl scale, an HPA or KEDA use it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from k8s.control_plane import ControlPlane

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("jobqueue_crds")]

EXAMPLES = Path(__file__).resolve().parents[3] / "crds" / "examples"
GROUP, VERSION = "jobqueue.dev", "v1alpha1"
PLURALS = {"JobQueue": "jobqueues", "WorkerPool": "workerpools", "RecurringTask": "recurringtasks"}


def example(kind: str) -> dict[str, Any]:
    for path in EXAMPLES.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        if doc["kind"] == kind:
            return copy.deepcopy(doc)
    raise AssertionError(f"no example for {kind}")


def create(api: k8s_client.ApiClient, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    objects = k8s_client.CustomObjectsApi(api)
    created = objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[body["kind"]], body)
    assert isinstance(created, dict)
    return created


def test_examples_are_accepted_and_defaulted(kube_api: k8s_client.ApiClient, kube_namespace: str) -> None:
    queue = create(kube_api, kube_namespace, example("JobQueue"))
    assert queue["spec"]["paused"] is False
    assert queue["spec"]["deadLetter"]["maxLostLeases"] == 3

    pool = create(kube_api, kube_namespace, example("WorkerPool"))
    assert pool["spec"]["imagePullPolicy"] == "IfNotPresent"
    assert pool["spec"]["replicas"] == 1
    assert pool["spec"]["autoscaling"]["activationDepth"] == 0

    task = create(kube_api, kube_namespace, example("RecurringTask"))
    assert task["spec"]["suspend"] is False
    assert task["spec"]["args"] == ["daily"]
    assert task["spec"]["kwargs"] == {"dry_run": False}


def test_minimal_resources_get_every_default(kube_api: k8s_client.ApiClient, kube_namespace: str) -> None:
    queue = create(
        kube_api,
        kube_namespace,
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "JobQueue", "metadata": {"name": "default"}, "spec": {}},
    )
    assert queue["spec"]["priority"] == {"policy": "Strict"}
    assert queue["spec"]["retries"]["backoff"]["strategy"] == "exponential"
    task = create(
        kube_api,
        kube_namespace,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "RecurringTask",
            "metadata": {"name": "tick"},
            "spec": {"schedule": "@hourly", "task": "app.tick"},
        },
    )
    assert task["spec"]["timeZone"] == "UTC"
    assert task["spec"]["concurrencyPolicy"] == "Allow"
    assert task["spec"]["queue"] == "default"


def set_path(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        doc = doc.setdefault(key, {})
    doc[leaf] = value


INVALID = [
    (
        "WorkerPool",
        {"spec.autoscaling.minReplicas": 5, "spec.autoscaling.maxReplicas": 2},
        "autoscaling.minReplicas must be less than or equal to autoscaling.maxReplicas",
    ),
    (
        "WorkerPool",
        {"spec.health.heartbeatStaleSeconds": 300, "spec.health.leaseOrphanSeconds": 60},
        "health.leaseOrphanSeconds must be at least health.heartbeatStaleSeconds",
    ),
    (
        "RecurringTask",
        {"spec.schedule": "every day at 7"},
        "schedule must be a cron expression with five fields",
    ),
    ("RecurringTask", {"spec.schedule": "30 7 * *"}, "schedule must be a cron expression with five fields"),
    ("RecurringTask", {"spec.timeZone": "Berlin time"}, "timeZone must be an IANA time zone name"),
    ("JobQueue", {"spec.rateLimit.burst": 500}, "rateLimit.burst must not exceed rateLimit.tasks"),
    (
        "JobQueue",
        {"spec.priorityRateLimits.low": {"tasks": 2, "burst": 5}},
        "a level's burst must not exceed its tasks",
    ),
    (
        "JobQueue",
        {"spec.priority": {"policy": "Weighted"}},
        "priority.weights is required when priority.policy is Weighted",
    ),
    (
        "JobQueue",
        {"spec.priority": {"policy": "Strict", "weights": {"high": 1, "medium": 1, "low": 1}}},
        "priority.weights is required when priority.policy is Weighted and not allowed otherwise",
    ),
    (
        "JobQueue",
        {"spec.retries.backoff.initialSeconds": 900, "spec.retries.backoff.maxSeconds": 60},
        "retries.backoff.initialSeconds must not exceed retries.backoff.maxSeconds",
    ),
    ("JobQueue", {"metadata.name": "emails.v2"}, "metadata.name is the queue name and must be 1-64 letters"),
    ("JobQueue", {"metadata.name": "schedules"}, "not the reserved name schedules"),
    ("JobQueue", {"spec.queueName": "schedules"}, "spec.queueName must not be the reserved name schedules"),
    ("JobQueue", {"spec.queueName": "emails.v2"}, "spec.queueName"),
    ("JobQueue", {"spec.retries.backoff.strategy": "Fibonacci"}, "spec.retries.backoff.strategy"),
    ("WorkerPool", {"spec.queues": ["emails", "schedules"]}, "must not name the reserved queue schedules"),
    ("WorkerPool", {"spec.queues": ["a" * 65]}, "spec.queues[0]"),
    (
        "RecurringTask",
        {"spec.queue": "schedules"},
        "spec.queue must not be the reserved queue name schedules",
    ),
    ("RecurringTask", {"spec.queue": "reports\n"}, "spec.queue"),
    (
        "WorkerPool",
        {"spec.podTemplate.spec": {"containers": [{"name": "worker", "image": "evil:1"}]}},
        "the worker container's image, command and args are the operator's",
    ),
    (
        "WorkerPool",
        {"spec.podTemplate.spec": {"containers": [{"name": "worker", "args": ["sh", "-c", "id"]}]}},
        "the worker container's image, command and args are the operator's",
    ),
    (
        "WorkerPool",
        {"spec.podTemplate.spec": {"initContainers": [{"name": "worker", "image": "x"}]}},
        "the name worker is the worker container's",
    ),
    (
        "WorkerPool",
        {"spec.podTemplate.spec": {"volumes": [{"name": "jobqueue-tmp", "emptyDir": {}}]}},
        "volume names starting with jobqueue- are the operator's",
    ),
    (
        "WorkerPool",
        {"spec.podTemplate.spec": {"volumes": [{"name": "a", "emptyDir": {}}] * 2}},
        "Duplicate value",
    ),
    (
        "WorkerPool",
        {"spec.disruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}},
        "disruptionBudget needs exactly one of minAvailable and maxUnavailable",
    ),
]


@pytest.mark.parametrize(
    ("kind", "changes", "message"),
    INVALID,
    ids=[f"{kind}-{'+'.join(changes)}" for kind, changes, _ in INVALID],
)
def test_invalid_resources_are_rejected_with_the_rule_message(
    kube_api: k8s_client.ApiClient, kube_namespace: str, kind: str, changes: dict[str, Any], message: str
) -> None:
    body = example(kind)
    for dotted, value in changes.items():
        set_path(body, dotted, value)
    with pytest.raises(ApiException) as caught:
        create(kube_api, kube_namespace, body)
    assert caught.value.status == 422
    details = json.loads(caught.value.body)
    assert message in details["message"], details["message"]


def test_a_full_pod_template_is_accepted_as_written(
    kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    body = example("WorkerPool")
    template = {
        "containers": [
            {"name": "worker", "volumeMounts": [{"name": "settings", "mountPath": "/etc/acme"}],
             "readinessProbe": {"tcpSocket": {"port": 9100}}},
            {"name": "proxy", "image": "envoy:1", "args": ["--config", "/etc/envoy.yaml"]},
        ],
        "initContainers": [{"name": "wait", "image": "busybox:1", "command": ["true"]}],
        "volumes": [{"name": "settings", "configMap": {"name": "acme-settings"}}],
        "tolerations": [{"key": "batch", "operator": "Exists"}],
    }  # fmt: skip
    body["spec"]["podTemplate"] = {"spec": template}
    body["spec"]["disruptionBudget"] = {"maxUnavailable": "25%"}
    created = create(kube_api, kube_namespace, body)
    assert created["spec"]["podTemplate"]["spec"] == template
    assert created["spec"]["disruptionBudget"] == {"maxUnavailable": "25%"}


def test_queue_names_the_broker_accepts_are_accepted(
    kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    # The broker's rule (jobqueue.keys.validate_queue_name): uppercase and '_' are valid queue names, so
    # pools and schedules may name them, and a JobQueue configures one through spec.queueName.
    pool = example("WorkerPool")
    pool["spec"]["queues"] = ["Emails_V2", "a" * 64]
    assert create(kube_api, kube_namespace, pool)["spec"]["queues"] == ["Emails_V2", "a" * 64]
    task = example("RecurringTask")
    task["spec"]["queue"] = "Reports_Daily"
    assert create(kube_api, kube_namespace, task)["spec"]["queue"] == "Reports_Daily"
    queue = example("JobQueue")
    queue["metadata"]["name"] = "emails-v2"
    queue["spec"]["queueName"] = "Emails_V2"
    assert create(kube_api, kube_namespace, queue)["spec"]["queueName"] == "Emails_V2"


def test_queue_name_cannot_change_and_old_backoff_spellings_stay_valid(
    kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    objects = k8s_client.CustomObjectsApi(kube_api)
    body = example("JobQueue")
    body["spec"]["queueName"] = "Emails_V2"
    body["spec"]["retries"]["backoff"]["strategy"] = "Fixed"  # written before the core's names were accepted
    created = create(kube_api, kube_namespace, body)
    assert created["spec"]["retries"]["backoff"]["strategy"] == "Fixed"
    args = (GROUP, VERSION, kube_namespace, "jobqueues", created["metadata"]["name"])
    with pytest.raises(ApiException) as caught:
        objects.patch_namespaced_custom_object(
            *args, {"spec": {"queueName": "Other"}}, _content_type="application/merge-patch+json"
        )
    assert "spec.queueName cannot be changed" in json.loads(caught.value.body)["message"]
    patched = objects.patch_namespaced_custom_object(
        *args,
        {"spec": {"retries": {"backoff": {"strategy": "constant"}}}},
        _content_type="application/merge-patch+json",
    )
    assert patched["spec"]["retries"]["backoff"]["strategy"] == "constant"


def test_schema_rejects_unknown_enum_values(kube_api: k8s_client.ApiClient, kube_namespace: str) -> None:
    body = example("RecurringTask")
    body["spec"]["concurrencyPolicy"] = "Sometimes"
    with pytest.raises(ApiException) as caught:
        create(kube_api, kube_namespace, body)
    assert caught.value.status == 422
    assert "spec.concurrencyPolicy" in json.loads(caught.value.body)["message"]


def test_workerpool_scale_subresource(kube_api: k8s_client.ApiClient, kube_namespace: str) -> None:
    objects = k8s_client.CustomObjectsApi(kube_api)
    pool = create(kube_api, kube_namespace, example("WorkerPool"))
    name = pool["metadata"]["name"]
    args = (GROUP, VERSION, kube_namespace, "workerpools", name)

    # What `kubectl scale workerpool/email-workers --replicas=3` sends.
    objects.patch_namespaced_custom_object_scale(
        *args, {"spec": {"replicas": 3}}, _content_type="application/merge-patch+json"
    )
    assert objects.get_namespaced_custom_object(*args)["spec"]["replicas"] == 3

    # The operator reports what the Deployment has; an HPA reads it back through the scale subresource.
    objects.patch_namespaced_custom_object_status(
        *args,
        {"status": {"replicas": 2, "selector": "jobqueue.dev/pool=email-workers"}},
        _content_type="application/merge-patch+json",
    )
    scale = objects.get_namespaced_custom_object_scale(*args)
    assert scale["spec"]["replicas"] == 3
    assert scale["status"] == {"replicas": 2, "selector": "jobqueue.dev/pool=email-workers"}

    with pytest.raises(ApiException) as caught:
        objects.patch_namespaced_custom_object_scale(
            *args, {"spec": {"replicas": -1}}, _content_type="application/merge-patch+json"
        )
    assert caught.value.status == 422


def test_short_names_and_category_are_served(kube_api: k8s_client.ApiClient) -> None:
    """What `kubectl get jq,wp,rt` and `kubectl get jobqueue-all` resolve names through."""
    resources = k8s_client.CustomObjectsApi(kube_api).get_api_resources(GROUP, VERSION)
    by_kind = {r.kind: r for r in resources.resources if "/" not in r.name}
    assert {kind: r.short_names for kind, r in by_kind.items()} == {
        "JobQueue": ["jq"],
        "WorkerPool": ["wp"],
        "RecurringTask": ["rt"],
    }
    assert all(r.categories == ["jobqueue-all"] for r in by_kind.values())
    assert {r.name for r in resources.resources} >= {"workerpools/scale", "workerpools/status"}


# What `kubectl get` asks for: the server renders the CRD's printer columns into a table.
TABLE = {"Accept": "application/json;as=Table;g=meta.k8s.io;v=v1"}


def test_printer_columns_show_spec_and_status(
    kube_control_plane: ControlPlane, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    objects = k8s_client.CustomObjectsApi(kube_api)
    create(kube_api, kube_namespace, example("WorkerPool"))
    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, kube_namespace, "workerpools", "email-workers",
        {"status": {"replicas": 2, "readyReplicas": 1, "desiredReplicas": 3, "queueDepth": 70, "inFlight": 16,
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": "",
                                    "lastTransitionTime": "2026-01-01T00:00:00Z"}]}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    status, table = kube_control_plane.request(
        "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{kube_namespace}/workerpools", headers=TABLE
    )
    assert status == 200, table
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == ["Name", "Queues", "Desired", "Current", "Ready", "Depth", "In-Flight", "Autoscaling",
                     "Status", "Age"]  # fmt: skip
    (row,) = table["rows"]
    assert row["cells"][:9] == ["email-workers", '["emails","default"]', 3, 2, 1, 70, 16, True, "True"]

    create(kube_api, kube_namespace, example("RecurringTask"))
    status, table = kube_control_plane.request(
        "GET", f"/apis/{GROUP}/{VERSION}/namespaces/{kube_namespace}/recurringtasks", headers=TABLE
    )
    (row,) = table["rows"]
    assert row["cells"][:5] == [
        "daily-digest",
        "30 7 * * 1-5",
        "Europe/Berlin",
        "acme.tasks.send_digest",
        False,
    ]
