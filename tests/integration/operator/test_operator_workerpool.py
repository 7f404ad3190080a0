"""WorkerPools end to end: the real operator (subprocess), a real control plane with kwok pods, a real
Redis, and real `jobqueue worker` processes started by the pod runner for every Running pod.

- a backlog scales a pool from 1 toward max, drains, and the pool scales back down with no task killed
  mid-run: every task starts once and finishes once, and every pod removed by a scale-down had a worker
  the operator had drained first;
- a SIGKILLed worker: its pod is deleted and replaced, and its task completes on another worker long
  before its lease would have expired.
"""

from __future__ import annotations

import collections
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jq_testing import runs
from kubernetes import client as k8s_client
from prometheus_client.parser import text_string_to_metric_families

from jobqueue import Client, Settings
from jobqueue.models import TaskStatus
from k8s.control_plane import wait_until
from k8s.custom_resources import condition, create_cr, events_for, get_cr, worker_pool
from k8s.operator_process import OperatorProcess
from k8s.pod_runner import PodRunner, RunningWorker

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("operator")]


def pool_body(name: str, queue: str, **spec: Any) -> dict[str, Any]:
    return worker_pool(name, queue, **{"terminationGracePeriodSeconds": 30, **spec})


def drained_by_operator(worker: RunningWorker) -> bool:
    """The worker was told to drain by the operator (not stopped by its pod's deletion), handed back no
    unfinished task and exited 0. Its pod may be deleted in the moment between its deregistering and its
    process exiting, so whether the process still ran at deletion is not the test; its log is."""
    if worker.process.wait(30) != 0:
        return False
    text = Path(worker.log.name).read_text(errors="replace")
    return "drain requested for worker" in text and "grace period over" not in text


def metric(operator: OperatorProcess, name: str, **labels: str) -> float | None:
    """One sample of the operator's /metrics, or None when it is not exported."""
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def replicas_of(apps: k8s_client.AppsV1Api, namespace: str, name: str) -> int:
    deployment = apps.read_namespaced_deployment(name, namespace)
    return int(deployment.spec.replicas or 0)


def test_backlog_scales_up_drains_and_scales_down_without_killing_tasks(
    operator: OperatorProcess,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    client: Client,
    settings: Settings,
    pod_runner_factory: Callable[..., PodRunner],
) -> None:
    apps = k8s_client.AppsV1Api(kube_api)
    create_cr(
        kube_api,
        kube_namespace,
        "workerpools",
        pool_body(
            "crunch",
            "crunch",
            autoscaling={
                "enabled": True, "minReplicas": 1, "maxReplicas": 5, "targetTasksPerReplica": 20,
                "scaleUpCooldownSeconds": 2, "scaleDownCooldownSeconds": 4, "maxStep": 2,
            },
            health={"heartbeatStaleSeconds": 15, "leaseOrphanSeconds": 30},
        ),
    )  # fmt: skip
    # Leases long enough that a heartbeat delayed by the load of five workers on two shared cores never
    # loses one: this test is about the operator, and a lost lease would be counted as a second run.
    runner = pod_runner_factory("crunch", settings.model_copy(update={"lease_seconds": 15.0}))
    wait_until(lambda: len(client.list_workers()) == 1, 60, "the first worker to heartbeat")

    total = 300
    ids = {client.enqueue("record", [], {"sleep": 0.3}, queue="crunch").id for _ in range(total)}
    started = time.monotonic()
    samples: list[tuple[float, int]] = []

    def finished() -> bool:
        samples.append((time.monotonic() - started, replicas_of(apps, kube_namespace, "crunch")))
        return sum(1 for r in runs(client) if r[1] == "done") >= total

    wait_until(finished, 180, f"{total} tasks to finish", interval=0.5)
    drained_at = time.monotonic() - started
    peak = max(n for _, n in samples)
    at_peak = next(t for t, n in samples if n == peak)

    wait_until(lambda: replicas_of(apps, kube_namespace, "crunch") == 1, 90, "the pool to scale back to 1")
    wait_until(lambda: len(runner.alive()) == 1, 60, "one worker left running")

    def removed() -> list[RunningWorker]:
        return [w for w in list(runner.workers.values()) if w.alive_at_deletion is not None]

    wait_until(lambda: len(removed()) == len(runner.workers) - 1, 60, "the drained pods to be deleted")
    scaled_down_at = time.monotonic() - started
    print(
        f"\nbacklog {total}: peak {peak} replicas at {at_peak:.1f}s, drained at {drained_at:.1f}s, "
        f"back to 1 replica at {scaled_down_at:.1f}s; replica samples {sorted(set(n for _, n in samples))}"
    )

    assert peak >= 4, samples
    per_task = collections.Counter((task_id, what) for task_id, what, _ in runs(client))
    assert {task_id for task_id, _ in per_task} == ids
    assert all(count == 1 for count in per_task.values()), [k for k, c in per_task.items() if c > 1]
    assert all(client.get_task(task_id).status == TaskStatus.SUCCESS for task_id in ids)
    # Every pod a scale-down removed had a worker the operator drained before the pod went.
    assert len(removed()) >= peak - 1
    assert all(drained_by_operator(w) for w in removed()), [(w.pod, w.process.returncode) for w in removed()]

    pool = get_cr(kube_api, kube_namespace, "workerpools", "crunch")
    status = pool["status"]
    assert status["selector"] == "jobqueue.dev/pool=crunch"
    assert status["desiredReplicas"] == 1
    assert status["lastScaleTime"]
    assert (condition(pool, "Ready") or {}).get("status") == "True"
    reasons = events_for(kube_api, kube_namespace, "crunch")
    assert {"Scaled", "DrainRequested"} <= set(reasons), reasons
    assert not runner.errors
    metrics = operator.metrics()
    assert 'jobqueue_operator_scale_events_total{direction="up"' in metrics
    assert 'jobqueue_operator_scale_events_total{direction="down"' in metrics
    pool = {"namespace": kube_namespace, "pool": "crunch"}
    wait_until(
        lambda: metric(operator, "jobqueue_workerpool_replicas_current", **pool) == 1,
        30,
        "the replica gauges to show the scale-down",
    )
    assert metric(operator, "jobqueue_workerpool_replicas_desired", **pool) == 1
    assert metric(operator, "jobqueue_workerpool_replicas_min", **pool) == 1
    assert metric(operator, "jobqueue_workerpool_replicas_max", **pool) == 5
    assert (metric(operator, "jobqueue_workerpool_replicas_ready", **pool) or 0) <= 1
    assert (
        metric(operator, "jobqueue_operator_reconciliations_total", kind="WorkerPool", outcome="ok") or 0
    ) > 1
    assert (
        metric(operator, "jobqueue_operator_reconcile_duration_seconds_count", kind="WorkerPool") or 0
    ) > 1


def test_scale_subresource_drives_a_pool_without_autoscaling_and_drains_first(
    operator: OperatorProcess,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    client: Client,
    pod_runner_factory: Callable[..., PodRunner],
) -> None:
    """What an HPA or KEDA does: write spec.replicas through the scale subresource."""
    apps = k8s_client.AppsV1Api(kube_api)
    create_cr(kube_api, kube_namespace, "workerpools", pool_body("manual", "manual", replicas=3))
    runner = pod_runner_factory("manual")
    wait_until(lambda: len(client.list_workers()) == 3, 60, "three workers to heartbeat")
    busy = client.enqueue("record", [], {"sleep": 4.0}, queue="manual")
    wait_until(lambda: any(r[1] == "start" for r in runs(client)), 30, "the long task to start")

    k8s_client.CustomObjectsApi(kube_api).patch_namespaced_custom_object_scale(
        "jobqueue.dev", "v1alpha1", kube_namespace, "workerpools", "manual",
        {"spec": {"replicas": 1}}, _content_type="application/merge-patch+json",
    )  # fmt: skip
    wait_until(lambda: replicas_of(apps, kube_namespace, "manual") == 1, 60, "the Deployment to reach 1")
    assert client.wait(busy.id, timeout=30).status == TaskStatus.SUCCESS
    wait_until(lambda: len(runner.alive()) == 1, 60, "one worker left")

    def removed() -> list[RunningWorker]:
        return [w for w in list(runner.workers.values()) if w.alive_at_deletion is not None]

    wait_until(lambda: len(removed()) == 2, 60, "the two drained pods to be deleted")
    assert all(drained_by_operator(w) for w in removed()), [(w.pod, w.process.returncode) for w in removed()]
    # The busy worker was not chosen: idle ones drain first, so the long task ran where it started.
    assert [r[2] for r in runs(client) if r[1] == "start"] == [r[2] for r in runs(client) if r[1] == "done"]
    scale = k8s_client.CustomObjectsApi(kube_api).get_namespaced_custom_object_scale(
        "jobqueue.dev", "v1alpha1", kube_namespace, "workerpools", "manual"
    )
    wait_until(
        lambda: (
            k8s_client.CustomObjectsApi(kube_api)
            .get_namespaced_custom_object_scale(
                "jobqueue.dev", "v1alpha1", kube_namespace, "workerpools", "manual"
            )["status"]
            .get("replicas")
            == 1
        ),
        30,
        "the scale subresource to report 1 replica",
    )
    assert scale["status"]["selector"] == "jobqueue.dev/pool=manual"
    # Without autoscaling the pool has no bounds: no min / max series, so "pinned at max" cannot fire.
    pool = {"namespace": kube_namespace, "pool": "manual"}
    wait_until(
        lambda: metric(operator, "jobqueue_workerpool_replicas_desired", **pool) == 1,
        30,
        "the desired replicas gauge to follow spec.replicas",
    )
    assert metric(operator, "jobqueue_workerpool_replicas_max", **pool) is None

    # The Deployment is owned by the pool: deleting the pool deletes it (the garbage collector's work).
    k8s_client.CustomObjectsApi(kube_api).delete_namespaced_custom_object(
        "jobqueue.dev", "v1alpha1", kube_namespace, "workerpools", "manual"
    )
    wait_until(
        lambda: not apps.list_namespaced_deployment(kube_namespace).items, 60, "the owned Deployment to go"
    )


def test_orphaned_leases_of_a_vanished_worker_are_recovered(
    operator: OperatorProcess,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    settings: Settings,
    start_worker: Callable[..., Any],
) -> None:
    """A worker with no pod (here: run outside the cluster) dies holding a lease; the operator gives the
    task back once the worker has been silent for leaseOrphanSeconds, long before the lease expires."""
    slow_lease = settings.model_copy(update={"lease_seconds": 120.0})
    client = Client(slow_lease)
    try:
        create_cr(
            kube_api,
            kube_namespace,
            "workerpools",
            pool_body(
                "idle", "orphans", replicas=0, health={"heartbeatStaleSeconds": 2, "leaseOrphanSeconds": 3}
            ),
        )
        ghost = start_worker(
            "--queues", "orphans", "--pool", "thread", "--worker-id", "ghost", worker_settings=slow_lease
        )
        handle = client.enqueue("record", [], {"sleep": 60.0}, queue="orphans")
        wait_until(lambda: client.get_task(handle.id).status == TaskStatus.RUNNING, 30, "the task to run")
        ghost.signal_group(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(
            lambda: client.get_task(handle.id).status == TaskStatus.QUEUED,
            30,
            "the orphaned task to be requeued",
        )
        print(f"\norphaned lease recovered after {time.monotonic() - killed_at:.1f}s")
        assert client.queue_depth("orphans").in_flight == 0
        # The event and the counter follow the recovery in the same handler run; the task's new status may
        # be seen first.
        wait_until(lambda: "OrphanedLeases" in events_for(kube_api, kube_namespace, "idle"), 30, "the event")
        wait_until(
            lambda: metric(operator, "jobqueue_operator_leases_recovered_total", queue="orphans") == 1,
            30,
            "the recovered-leases counter",
        )
    finally:
        client.close()


def test_killed_worker_pod_is_replaced_and_its_task_completes_elsewhere(
    operator: OperatorProcess,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    settings: Settings,
    pod_runner_factory: Callable[..., PodRunner],
) -> None:
    # A long lease: the task must come back through the operator's recovery, not through lease expiry.
    slow_lease = settings.model_copy(update={"lease_seconds": 120.0})
    client = Client(slow_lease)
    core = k8s_client.CoreV1Api(kube_api)
    try:
        create_cr(
            kube_api,
            kube_namespace,
            "workerpools",
            pool_body(
                "steady", "steady", replicas=2, health={"heartbeatStaleSeconds": 3, "leaseOrphanSeconds": 5}
            ),
        )
        runner = pod_runner_factory("steady", slow_lease)
        wait_until(lambda: len(client.list_workers()) == 2, 60, "two workers to heartbeat")

        handle = client.enqueue("record", [], {"sleep": 3.0}, queue="steady")
        wait_until(lambda: any(r[1] == "start" for r in runs(client)), 30, "the task to start")
        first_pid = int(runs(client)[0][2])
        victim = runner.pod_of_pid(first_pid)
        assert victim is not None
        killed_at = time.monotonic()
        runner.worker(victim).process.send_signal(signal.SIGKILL)

        def victim_gone() -> bool:
            names = {p.metadata.name for p in core.list_namespaced_pod(kube_namespace).items}
            return victim not in names

        wait_until(victim_gone, 60, f"stale pod {victim} to be deleted")
        deleted_after = time.monotonic() - killed_at
        record = client.wait(handle.id, timeout=60)
        completed_after = time.monotonic() - killed_at
        print(
            f"\nSIGKILL: pod deleted after {deleted_after:.1f}s, task completed after {completed_after:.1f}s"
        )

        assert record.status == TaskStatus.SUCCESS
        done = [r for r in runs(client) if r[1] == "done"]
        assert len(done) == 1 and int(done[0][2]) != first_pid
        assert completed_after < slow_lease.lease_seconds
        wait_until(lambda: len(runner.alive()) == 2, 60, "a replacement pod with a running worker")
        assert victim not in runner.alive()
        assert "StaleWorker" in events_for(kube_api, kube_namespace, "steady")
        stale = metric(
            operator, "jobqueue_operator_stale_pods_deleted_total", namespace=kube_namespace, pool="steady"
        )
        assert stale is not None and stale >= 1
        assert (metric(operator, "jobqueue_operator_leases_recovered_total", queue="steady") or 0) >= 1
    finally:
        client.close()
