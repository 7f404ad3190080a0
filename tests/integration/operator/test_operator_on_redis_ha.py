"""The operator's Redis-facing work on a real Redis Sentinel setup (one primary, one replica, three
sentinels) and a real Redis Cluster (three primaries, one replica each), with the real operator process
on a real control plane: a JobQueue's configuration lands on the shard of its queue and its status shows
the queue's depth, the lease of a worker that died on a queue of another shard is recovered, and a
RecurringTask fires onto a queue of a shard other than the default queue's."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from redis.cluster import RedisCluster
from redis_topologies import ClusterTopology, SentinelTopology, ha_settings

from jobqueue import Client, Settings
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.keys import GlobalKeys, QueueKeys
from jobqueue.models import TaskStatus
from jobqueue.schedules.registry import ScheduleRegistry
from jobqueue.services.scheduler import Scheduler
from k8s.control_plane import ControlPlane, wait_until
from k8s.custom_resources import create_cr, events_for, get_cr, worker_pool
from k8s.operator_process import OperatorProcess, running_operator

pytestmark = pytest.mark.timeout(240)

Topology = SentinelTopology | ClusterTopology


@pytest.fixture(scope="module", params=["sentinel", "cluster"])
def topology(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """One Sentinel setup or one Cluster for the module's tests (none of them kills a server)."""
    root = tmp_path_factory.mktemp(request.param)
    started: Topology = SentinelTopology(root) if request.param == "sentinel" else ClusterTopology(root)
    try:
        yield started.start()
    finally:
        started.stop()


@pytest.fixture
def ha_core(topology: Topology) -> Settings:
    # A long lease: a dead worker's task must come back through the operator, not through expiry.
    return ha_settings(topology.url, lease_seconds=120.0)


@pytest.fixture
def ha_operator(
    kube_control_plane: ControlPlane,
    kube_api: k8s_client.ApiClient,
    jobqueue_crds: list[str],
    kube_namespace: str,
    ha_core: Settings,
    tmp_path: Path,
) -> Iterator[OperatorProcess]:
    """The real operator in a subprocess on the Sentinel or Cluster URL (as the `operator` fixture)."""
    with running_operator(kube_control_plane, kube_api, kube_namespace, ha_core, tmp_path) as proc:
        yield proc


def node_of(client: Client, key: str) -> str:
    """The primary serving ``key`` ("host:port"; one name for all keys through Sentinel)."""
    if isinstance(client.redis, RedisCluster):
        return str(client.redis.get_node_from_key(key).name)
    return "primary"


def queue_off_default_shard(client: Client, stem: str) -> str:
    """A queue whose shard is neither the default queue's nor the schedules' (any name on one primary)."""
    prefix = client.settings.key_prefix
    taken = {
        node_of(client, QueueKeys(prefix, "default").ready("high")),
        node_of(client, GlobalKeys(prefix).schedules),
    }
    for i in range(10_000):
        queue = f"{stem}{i}"
        if isinstance(client.redis, RedisCluster):
            if node_of(client, QueueKeys(prefix, queue).ready("high")) not in taken:
                return queue
        else:
            return queue
    raise AssertionError("no queue off the default shard")


def pool_body(name: str, queue: str, **spec: Any) -> dict[str, Any]:
    return worker_pool(name, queue, **{"replicas": 0, **spec})


def test_the_operator_configures_recovers_and_schedules_on_sentinel_and_cluster(
    ha_operator: OperatorProcess,
    kube_api: k8s_client.ApiClient,
    kube_namespace: str,
    topology: Topology,
    ha_core: Settings,
    start_worker: Callable[..., Any],
) -> None:
    client = Client(ha_core)
    try:
        configured = queue_off_default_shard(client, "cfg")
        orphans = queue_off_default_shard(client, "orph")
        ticks = queue_off_default_shard(client, "tick")

        # JobQueue -> queue configuration, written to the primary that serves the queue's slot.
        create_cr(
            kube_api,
            kube_namespace,
            "jobqueues",
            {
                "kind": "JobQueue",
                "metadata": {"name": configured},
                "spec": {"paused": True, "maxInFlight": 3},
            },
        )
        admin = QueueAdmin(client)
        wait_until(lambda: admin.get_config(configured).paused, 30, "the queue to be paused in Redis")
        assert admin.get_config(configured).max_in_flight == 3
        config_key = QueueKeys(ha_core.key_prefix, configured).config
        if isinstance(topology, ClusterTopology):
            # Read straight from the primary serving the slot (another node would answer MOVED).
            assert topology.primary_of(config_key).client().hget(config_key, "paused") is not None
        for _ in range(2):
            client.enqueue("add", [1, 2], queue=configured)

        def shows_depth() -> bool:
            status = get_cr(kube_api, kube_namespace, "jobqueues", configured).get("status", {})
            return status.get("depth", {}).get("medium") == 2

        wait_until(shows_depth, 30, "status.depth to show the waiting tasks")

        # A worker outside any pod dies holding a lease: the operator gives the task back.
        create_cr(
            kube_api,
            kube_namespace,
            "workerpools",
            pool_body("ghosts", orphans, health={"heartbeatStaleSeconds": 2, "leaseOrphanSeconds": 3}),
        )
        ghost = start_worker(
            "--queues", orphans, "--pool", "thread", "--worker-id", "ghost", worker_settings=ha_core
        )
        handle = client.enqueue("record", [], {"sleep": 60.0}, queue=orphans)
        wait_until(lambda: client.get_task(handle.id).status == TaskStatus.RUNNING, 30, "the task to run")
        ghost.signal_group(signal.SIGKILL)
        wait_until(
            lambda: client.get_task(handle.id).status == TaskStatus.QUEUED, 30, "the orphaned task requeued"
        )
        assert client.queue_depth(orphans).in_flight == 0
        wait_until(
            lambda: "OrphanedLeases" in events_for(kube_api, kube_namespace, "ghosts"), 30, "the event"
        )

        # RecurringTask -> a schedule in Redis; a scheduler fires it onto its queue's shard.
        create_cr(
            kube_api,
            kube_namespace,
            "recurringtasks",
            {
                "kind": "RecurringTask",
                "metadata": {"name": "tick"},
                "spec": {"schedule": "* * * * *", "task": "add", "args": [2, 3], "queue": ticks},
            },
        )
        registry = ScheduleRegistry(client)
        name = f"{kube_namespace}.tick"
        wait_until(lambda: any(i.schedule.name == name for i in registry.list()), 30, "the schedule in Redis")
        # Its next fire is the coming minute: make it the minute that just began, so the test need not wait
        # for the clock (the scheduler then fires that slot as it would have).
        this_minute_ms = int(time.time() // 60 * 60 * 1000)
        client.redis.zadd(GlobalKeys(ha_core.key_prefix).schedules_due, {name: this_minute_ms})
        scheduler = Scheduler(Client(ha_core), interval_seconds=0.5)
        try:
            wait_until(lambda: scheduler.fire_schedules()["fired"] >= 1 or registry.get(name).fired >= 1,
                       30, "the schedule to fire")  # fmt: skip
        finally:
            scheduler.client.close()
        assert client.queue_depth(ticks).total_ready == 1
        task_id = registry.get(name).last_task_id
        assert task_id is not None and client.get_task(task_id).queue == ticks

        def status_shows_fire() -> bool:
            status = get_cr(kube_api, kube_namespace, "recurringtasks", "tick").get("status", {})
            return status.get("lastTaskId") == task_id

        wait_until(status_shows_fire, 30, "the RecurringTask status to show the fire")
        # Nothing above may have worked only through kopf's retries: no handler or timer failed (on Cluster
        # the autoscaler's read of rate-limit state once failed on every reconcile).
        failures = [line for line in ha_operator.log().splitlines() if "failed with an exception" in line]
        assert not failures, "\n".join(failures[:5])
    finally:
        client.close()
