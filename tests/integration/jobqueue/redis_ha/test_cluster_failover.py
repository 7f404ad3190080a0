"""Failover on a real Redis Cluster: SIGKILL the primary holding a busy queue while two worker processes
run its tasks, a producer enqueues and the recorder moves their events into PostgreSQL; the cluster
promotes that primary's replica, and producer, workers and recorder go on without a restart. With
JOBQUEUE_REDIS_WAIT_REPLICAS=1 (enqueues and acks return once the shard's replica holds them) no task
acknowledged to the producer is lost."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from record_helpers import make_recorder
from redis_topologies import ClusterTopology, ha_settings

from jobqueue import Client, Settings, TaskStatus
from jobqueue.errors import BrokerUnavailable
from jobqueue.keys import QueueKeys

pytestmark = pytest.mark.timeout(300)

QUEUE = "busy"


class Producer(threading.Thread):
    """Enqueues tasks one by one, about 300 a second, until halted; keeps the acknowledged ids and when
    each was acknowledged."""

    def __init__(self, client: Client, path: Path) -> None:
        super().__init__(daemon=True)
        self.client, self.path = client, path
        self.acknowledged: list[tuple[str, float]] = []
        self.refused = 0
        self.errors: list[BaseException] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.003):
            try:
                handle = self.client.enqueue("note", [str(self.path), 0.001], queue=QUEUE)
                self.acknowledged.append((handle.id, time.monotonic()))
            except BrokerUnavailable:
                self.refused += 1
                time.sleep(0.05)
            except BaseException as exc:  # surfaced by the test, never swallowed
                self.errors.append(exc)
                return


@pytest.fixture
def settings(private_cluster_topology: ClusterTopology) -> Settings:
    return ha_settings(
        private_cluster_topology.url, lease_seconds=10.0, redis_wait_replicas=1, redis_wait_timeout_seconds=5
    )


def test_sigkill_of_a_primary_under_load_the_replica_takes_over_without_restarts(
    settings: Settings,
    private_cluster_topology: ClusterTopology,
    start_worker: Callable[..., object],
    tmp_path: Path,
    pg_pool: ConnectionPool,
) -> None:
    topology = private_cluster_topology
    runs_file = tmp_path / "runs.txt"
    runs_file.touch()
    client = Client(settings)
    key = QueueKeys(settings.key_prefix, QUEUE).ready("medium")
    workers = [start_worker("--queues", QUEUE, "--pool", "thread", "--prefetch", "8") for _ in range(2)]
    producer = Producer(client, runs_file)
    producer.start()
    recorder_client = Client(settings)
    recorder = make_recorder(recorder_client, pg_pool)
    recording = threading.Thread(target=recorder.run, daemon=True)
    recording.start()
    try:
        # Every worker running before the kill: one still starting then exits (its first connection is
        # made at start-up), which a kubelet would restart, and is not what this test measures.
        wait_until(lambda: all("started on queues" in w.log() for w in workers), timeout=60)  # type: ignore[attr-defined]
        wait_until(lambda: len(runs_file.read_text().splitlines()) >= 300, timeout=120)
        victim = topology.primary_of(key)
        before_kill = recorder.stats.duplicates
        killed_at = time.monotonic()
        victim.kill()
        promoted = topology.wait_for_promotion(victim, key, timeout=60)
        promoted_after = time.monotonic() - killed_at
        # The promoted replica has no replica of its own: WAIT cannot be satisfied and enqueues and acks
        # on its shard are refused (ReplicationIncomplete) until the killed node is back as its replica.
        topology.restart_as_replica(victim)
        replica_back_after = time.monotonic() - killed_at
        time.sleep(2.0)  # the producer goes on against the promoted replica
        producer.halt.set()
        producer.join(60)
        assert not producer.is_alive() and not producer.errors, producer.errors
        after_promotion = [i for i, at in producer.acknowledged if at > killed_at + promoted_after]
        assert after_promotion, "the producer enqueued nothing after the promotion"

        def settled() -> bool:
            return all(client.get_task(i).status == TaskStatus.SUCCESS for i in after_promotion)

        wait_until(settled, timeout=120, interval=0.5)
        for w in workers:
            assert w.process.poll() is None, w.log()[-3000:]  # type: ignore[attr-defined]
        acknowledged = [i for i, _ in producer.acknowledged]
        wait_until(lambda: all(_final(client, i) for i in acknowledged), timeout=60, interval=0.5)
        attempts = collections.defaultdict(list)
        for line in runs_file.read_text().splitlines():
            task_id, attempt, _pid = line.split()
            attempts[task_id].append(int(attempt))
        lost = [i for i in acknowledged if i not in attempts]
        twice = [i for i, a in attempts.items() if len(a) > 1]
        print(
            f"cluster failover: replica (port {promoted.port}) promoted {promoted_after:.1f}s after SIGKILL, "
            f"the killed node back as its replica after {replica_back_after:.1f}s; {len(acknowledged)} "
            f"acknowledged, {producer.refused} refused during failover, {len(lost)} acknowledged but never "
            f"run, {len(twice)} ran twice"
        )
        # WAIT: an acknowledged enqueue was on the replica that took over.
        assert lost == []

        # The recorder was never restarted: its reads of the killed primary's streams failed until the
        # promotion (BrokerUnavailable, retried with backoff), then went to the promoted replica, whose
        # consumer group is the replicated one.
        def recorded() -> bool:
            with pg_pool.connection() as conn:
                rows = dict(
                    conn.execute("SELECT id, status FROM tasks WHERE id = ANY(%s)", [after_promotion])
                )
            return len(rows) == len(after_promotion) and set(rows.values()) == {"SUCCESS"}

        wait_until(recorded, timeout=60, interval=0.5)
        assert recording.is_alive()
        print(f"recorder: {recorder.stats}; {before_kill} duplicates before the kill")
    finally:
        recorder.stop()
        recording.join(30)
        recorder_client.close()
        client.close()


def _final(client: Client, task_id: str) -> bool:
    """Finished, or gone from Redis (lost with the old primary)."""
    try:
        return client.get_task(task_id).status == TaskStatus.SUCCESS
    except Exception:  # TaskNotFound: lost
        return True
