"""WorkerPools with ``processes: 2``: the real operator (subprocess), a real control plane with kwok pods,
a real Redis, and the pod runner starting each pod's real ``jobqueue worker --processes 2``.

- each pod's two worker processes heartbeat as ``<pod>_0`` and ``<pod>_1``; one of them hanging makes
  the pod stale: the operator deletes it and recovers the hung worker's leases at once, while its live
  sibling drains; the task runs to completion exactly once more;
- the lease of a vanished two-process worker outside any pod is recovered by its id's pod part.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import runs
from kubernetes import client as k8s_client

from jobqueue import Client, Settings
from jobqueue.models import TaskStatus
from jobqueue.worker_ids import pod_of
from k8s.control_plane import wait_until
from k8s.custom_resources import create_cr, events_for, worker_pool
from k8s.operator_process import OperatorProcess
from k8s.pod_runner import PodRunner

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("operator")]


def pool_body(name: str, queue: str, **spec: Any) -> dict[str, Any]:
    return worker_pool(
        name, queue, **{"concurrency": 1, "processes": 2, "terminationGracePeriodSeconds": 30, **spec}
    )


def worker_ids(client: Client) -> set[str]:
    return {w.id for w in client.list_workers()}


def test_a_hung_worker_process_makes_its_pod_stale_and_its_task_completes_elsewhere(
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
                "multi", "multi", replicas=1, health={"heartbeatStaleSeconds": 3, "leaseOrphanSeconds": 5}
            ),
        )
        runner = pod_runner_factory("multi", slow_lease)
        wait_until(lambda: len(worker_ids(client)) == 2, 60, "the pod's two worker processes to heartbeat")
        (pod,) = runner.alive()
        assert worker_ids(client) == {f"{pod}_0", f"{pod}_1"}

        handle = client.enqueue("record", [], {"sleep": 3.0}, queue="multi")
        wait_until(lambda: any(r[1] == "start" for r in runs(client)), 30, "the task to start")
        hung_pid = int(runs(client)[0][2])
        hung_worker = client.get_task(handle.id).worker
        assert hung_worker is not None and pod_of(hung_worker) == pod
        # Hung, not dead: the pod's parent process sees nothing wrong; only the silence tells.
        runner_pid = runner.worker(pod).process.pid
        assert hung_pid != runner_pid
        os.kill(hung_pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:

            def pod_gone() -> bool:
                return pod not in {p.metadata.name for p in core.list_namespaced_pod(kube_namespace).items}

            wait_until(pod_gone, 60, f"stale pod {pod} to be deleted")
            deleted_after = time.monotonic() - stopped_at
            record = client.wait(handle.id, timeout=60)
            completed_after = time.monotonic() - stopped_at
        finally:
            os.kill(hung_pid, signal.SIGKILL)
        print(
            f"\nhung process: pod deleted after {deleted_after:.1f}s, task done after {completed_after:.1f}s"
        )

        assert record.status == TaskStatus.SUCCESS
        done = [r for r in runs(client) if r[1] == "done"]
        assert len(done) == 1 and int(done[0][2]) != hung_pid
        assert completed_after < slow_lease.lease_seconds
        # Done by a live worker: the replacement pod's, or the hung one's sibling when it fetched the
        # recovered task before its pod's SIGTERM reached it (it then finishes it within its grace).
        assert client.get_task(handle.id).worker != hung_worker
        events = events_for(kube_api, kube_namespace, "multi")
        assert "StaleWorker" in events
        wait_until(lambda: len(runner.alive()) == 1 and pod not in runner.alive(), 60, "a replacement pod")
        (replacement,) = runner.alive()
        wait_until(
            lambda: {f"{replacement}_0", f"{replacement}_1"} <= worker_ids(client),
            60,
            "the replacement's two worker processes",
        )
    finally:
        client.close()


def test_orphaned_leases_of_a_vanished_two_process_worker_are_recovered(
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    settings: Settings,
    start_worker: Callable[..., Any],
) -> None:
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
            "--queues", "orphans", "--pool", "thread", "--concurrency", "1", "--prefetch", "0",
            "--processes", "2", "--worker-id", "ghost", worker_settings=slow_lease,
        )  # fmt: skip
        wait_until(lambda: worker_ids(client) == {"ghost_0", "ghost_1"}, 30, "both ghost processes")
        handles = [client.enqueue("record", [], {"sleep": 60.0}, queue="orphans") for _ in range(2)]
        wait_until(
            lambda: all(client.get_task(h.id).status == TaskStatus.RUNNING for h in handles),
            30,
            "both to run",
        )
        assert {client.get_task(h.id).worker for h in handles} == {"ghost_0", "ghost_1"}
        ghost.signal_group(signal.SIGKILL)  # the parent and both processes, holding a lease each
        wait_until(
            lambda: all(client.get_task(h.id).status == TaskStatus.QUEUED for h in handles),
            30,
            "both orphaned tasks to be requeued",
        )
        assert client.queue_depth("orphans").in_flight == 0
        assert "OrphanedLeases" in events_for(kube_api, kube_namespace, "idle")
    finally:
        client.close()
