"""Failover under load on real servers: SIGKILL the primary while a producer enqueues and three worker
processes run tasks; the sentinels promote the replica, and producer and workers go on without a restart.

With JOBQUEUE_REDIS_WAIT_REPLICAS=1 every enqueue acknowledged to the producer survives and completes.
Runs are counted from a file the task appends to (a record the failover cannot lose): a task may run
twice only when the promotion lost its lease (the fetch or the ack had not reached the replica), and
those are counted and bounded by what was in flight at the kill."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from jq_testing import wait_until
from redis_topologies import SentinelTopology, ha_settings

from jobqueue import Client, Settings, TaskStatus
from jobqueue.errors import BrokerUnavailable

pytestmark = pytest.mark.timeout(300)

TASKS = 2000
WORKERS = 3
CONCURRENCY = 4
PREFETCH = 8  # leased ahead of free slots; with the slots, the most one worker holds at the kill


class Producer(threading.Thread):
    """Enqueues ``total`` tasks one by one; keeps the ids Redis acknowledged and counts refusals (raised
    enqueues, which the caller would retry) without retrying them."""

    def __init__(self, client: Client, path: Path, total: int) -> None:
        super().__init__(daemon=True)
        self.client, self.path, self.total = client, path, total
        self.acknowledged: list[str] = []
        self.refused = 0
        self.errors: list[BaseException] = []

    def run(self) -> None:
        for _ in range(self.total):
            try:
                self.acknowledged.append(self.client.enqueue("note", [str(self.path), 0.001]).id)
            except BrokerUnavailable:
                self.refused += 1
                time.sleep(0.05)
            except BaseException as exc:  # surfaced by the test, never swallowed
                self.errors.append(exc)
                return


@pytest.fixture(params=[2.0, 10.0], ids=["lease-2s", "lease-10s"])
def settings(request: pytest.FixtureRequest, private_sentinel_topology: SentinelTopology) -> Settings:
    # Every acknowledged enqueue and ack is on the replica before it returns. A lease shorter than the
    # failover expires during it (its task runs again); a longer one is renewed once the replica is promoted.
    return ha_settings(
        private_sentinel_topology.url,
        redis_wait_replicas=1,
        redis_wait_timeout_seconds=5,
        lease_seconds=request.param,
    )


def test_sigkill_of_the_primary_under_load_loses_no_acknowledged_task(
    settings: Settings,
    private_sentinel_topology: SentinelTopology,
    start_worker: Callable[..., object],
    tmp_path: Path,
) -> None:
    topology = private_sentinel_topology
    runs_file = tmp_path / "runs.txt"
    runs_file.touch()
    client = Client(settings)
    workers = [
        start_worker("--pool", "thread", "--concurrency", str(CONCURRENCY), "--prefetch", str(PREFETCH))
        for _ in range(WORKERS)
    ]
    producer = Producer(client, runs_file, TASKS)
    producer.start()
    try:
        # Every worker running before the kill: one still starting then exits (its first connection is
        # made at start-up), which a kubelet would restart, and is not what this test measures.
        wait_until(lambda: all("started on queues" in w.log() for w in workers), timeout=60)  # type: ignore[attr-defined]
        wait_until(lambda: len(runs_file.read_text().splitlines()) >= TASKS // 4, timeout=120)
        killed_at = time.monotonic()
        topology.primary.kill()
        topology.wait_for_failover(topology.primary.port, timeout=60)
        promoted_after = time.monotonic() - killed_at
        # Until a replica is back, WAIT cannot be satisfied: enqueues and acks are refused
        # (ReplicationIncomplete), which is what the setting promises. The restarted node becomes one.
        topology.restart_old_primary_as_replica()
        replica_back_after = time.monotonic() - killed_at
        producer.join(180)
        assert not producer.is_alive() and not producer.errors, producer.errors

        acknowledged = producer.acknowledged

        def all_done() -> bool:
            return all(client.get_task(i).status == TaskStatus.SUCCESS for i in acknowledged[-200:]) and all(
                client.get_task(i).status == TaskStatus.SUCCESS for i in acknowledged
            )

        wait_until(all_done, timeout=180, interval=0.5)
        for w in workers:
            assert w.process.poll() is None, w.log()[-3000:]  # type: ignore[attr-defined]
        attempts = collections.defaultdict(list)
        for line in runs_file.read_text().splitlines():
            task_id, attempt, _pid = line.split()
            attempts[task_id].append(int(attempt))
        missing = [i for i in acknowledged if i not in attempts]
        twice = {i: a for i, a in attempts.items() if len(a) > 1}
        # Same attempt number twice: the fetch never reached the replica, so the promoted primary handed
        # the task out again. A higher attempt: its lease expired during the failover and was recovered.
        fetch_lost = sum(1 for a in twice.values() if len(set(a)) < len(a))
        print(
            f"failover: promoted {promoted_after:.1f}s after SIGKILL, replica back after "
            f"{replica_back_after:.1f}s; {len(acknowledged)} acknowledged, "
            f"{producer.refused} refused during failover, {len(missing)} acknowledged but never run, "
            f"{len(twice)} ran more than once ({fetch_lost} of them because the promotion lost their fetch, "
            f"the others because their lease expired during the failover), {len(attempts)} distinct tasks ran"
        )
        assert missing == []
        if settings.lease_seconds > 3 * promoted_after:
            # The lease outlasts the failover: a second run needs a fetch the promotion lost, so at most
            # what the workers held or had fetched at the kill, and nothing else runs twice.
            assert len(twice) <= WORKERS * (CONCURRENCY + PREFETCH)
            assert len(twice) == fetch_lost
        # A lease shorter than the failover: leases expire while workers reconnect and their tasks are
        # recovered and run again, by design (docs/operations.md); how many depends on how long the
        # reconnection takes on a loaded machine, so they are counted (printed above), not bounded.
    finally:
        client.close()
