"""A drain the operator no longer needs is called off: the real operator, control plane, Redis, workers.

A lowered spec.replicas makes the operator hold a busy worker drained (no fetching); raising spec.replicas
again before the drain finished must hand that worker back to the pool (its annotations cleared, fetching
again), not leave it idle for good.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from jq_testing import runs
from kubernetes import client as k8s_client

from jobqueue import Client, Settings
from jobqueue_operator.decisions import POD_DELETION_COST_ANNOTATION
from jobqueue_operator.pool_plan import DRAIN_ANNOTATION
from k8s.control_plane import wait_until
from k8s.custom_resources import create_cr, events_for
from k8s.pod_runner import PodRunner

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("operator")]


def scale(api: k8s_client.ApiClient, namespace: str, pool: str, replicas: int) -> None:
    """What an HPA does: write spec.replicas through the scale subresource."""
    k8s_client.CustomObjectsApi(api).patch_namespaced_custom_object_scale(
        "jobqueue.dev", "v1alpha1", namespace, "workerpools", pool,
        {"spec": {"replicas": replicas}}, _content_type="application/merge-patch+json",
    )  # fmt: skip


def test_raising_replicas_during_a_drain_calls_it_off_and_the_worker_fetches_again(
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    client: Client,
    settings: Settings,
    pod_runner_factory: Callable[..., PodRunner],
) -> None:
    core, apps = k8s_client.CoreV1Api(kube_api), k8s_client.AppsV1Api(kube_api)
    create_cr(
        kube_api,
        kube_namespace,
        "workerpools",
        {
            "kind": "WorkerPool",
            "metadata": {"name": "flip"},
            "spec": {
                "queues": ["flip"], "image": "example.invalid/jobqueue-worker:test", "app": "jq_test_app:app",
                "concurrency": 2, "poolKind": "thread", "terminationGracePeriodSeconds": 30, "replicas": 2,
            },
        },
    )  # fmt: skip
    # Fast heartbeats so the worker sees the drain (and its calling off) within a fraction of a second.
    runner = pod_runner_factory("flip", settings.model_copy(update={"heartbeat_seconds": 0.3}))
    wait_until(lambda: len(client.list_workers()) == 2, 60, "two workers to heartbeat")

    # Both workers busy, so the drain cannot finish before it is called off.
    for _ in range(4):
        client.enqueue("record", [], {"sleep": 8.0}, queue="flip")
    wait_until(lambda: sum(1 for r in runs(client) if r[1] == "start") == 4, 30, "four long tasks to start")

    scale(kube_api, kube_namespace, "flip", 1)

    def drained_pods() -> list[str]:
        pods = core.list_namespaced_pod(kube_namespace, label_selector="jobqueue.dev/pool=flip").items
        return [p.metadata.name for p in pods if DRAIN_ANNOTATION in (p.metadata.annotations or {})]

    wait_until(lambda: len(drained_pods()) == 1, 30, "one pod to be marked for drain")
    [held] = drained_pods()

    def status_of(worker: str) -> str:
        return next((w.status.value for w in client.list_workers() if w.id == worker), "")

    wait_until(lambda: status_of(held) == "DRAINING", 20, "the chosen worker to hold")

    scale(kube_api, kube_namespace, "flip", 2)
    wait_until(lambda: "DrainCalledOff" in events_for(kube_api, kube_namespace, "flip"), 30, "the call-off")
    wait_until(lambda: drained_pods() == [], 20, "the drain annotation to be cleared")
    annotations = core.read_namespaced_pod(held, kube_namespace).metadata.annotations or {}
    assert POD_DELETION_COST_ANNOTATION not in annotations
    assert int(apps.read_namespaced_deployment("flip", kube_namespace).spec.replicas) == 2
    wait_until(lambda: status_of(held) in {"ACTIVE", "IDLE"}, 20, "the worker to fetch again")
    assert runner.worker(held).process.poll() is None

    # Once the long tasks are done, new work reaches the worker that was held.
    wait_until(lambda: sum(1 for r in runs(client) if r[1] == "done") == 4, 30, "the long tasks to finish")
    before = len(runs(client))
    for _ in range(8):
        client.enqueue("record", [], {"sleep": 0.5}, queue="flip")
    wait_until(lambda: len(runs(client)) - before == 16, 60, "the short tasks to run")
    short_pids = {int(r[2]) for r in runs(client)[before:]}
    assert held in {runner.pod_of_pid(pid) for pid in short_pids}
    assert not runner.errors
