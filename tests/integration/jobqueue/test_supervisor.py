"""The local supervisor of `jobqueue up`: scales real worker processes from queue depth and replaces dead
ones, with the same pure decisions the operator uses."""

from __future__ import annotations

import collections
import signal
from pathlib import Path

import pytest
from jq_testing import runs, wait_until, worker_env

from jobqueue import Client, Settings
from jobqueue.commands import make_request
from jobqueue.scaling import ScalingPolicy
from jobqueue.supervisor import LocalSupervisor


def make_supervisor(client: Client, settings: Settings, tmp_path: Path, **policy: float) -> LocalSupervisor:
    env = worker_env(settings)
    return LocalSupervisor(
        client,
        app_spec="jq_test_app:app",
        queues=["default"],
        concurrency=2,
        policy=ScalingPolicy(**policy),  # type: ignore[arg-type]
        log_dir=tmp_path,
        env=env,
        heartbeat_stale_seconds=10,
    )


@pytest.mark.timeout(150)
def test_scales_up_with_backlog_and_down_by_draining(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    supervisor = make_supervisor(
        client,
        settings,
        tmp_path,
        min_replicas=1,
        max_replicas=3,
        target_per_replica=4,
        scale_up_cooldown_seconds=0,
        scale_down_cooldown_seconds=0,
        max_step=2,
    )
    supervisor.start()
    try:
        client.enqueue_many([make_request("record", [], {"sleep": 0.2}) for _ in range(60)])
        supervisor.tick()
        assert supervisor.replicas == 3  # 60 / 4 wants 15, clamped to 3, step 2 then 1

        def drained() -> bool:
            depth = client.queue_depth("default")
            return depth.total_ready == 0 and depth.in_flight == 0

        def settled() -> bool:
            supervisor.tick()
            return supervisor.replicas == 1 and len(supervisor.workers) == 1

        wait_until(drained, timeout=100, interval=0.2)
        wait_until(settled, timeout=60, interval=0.5)
        starts = collections.Counter(task_id for task_id, what, _ in runs(client) if what == "start")
        dones = collections.Counter(task_id for task_id, what, _ in runs(client) if what == "done")
        assert len(dones) == 60 and set(dones.values()) == {1} and set(starts.values()) == {1}
        assert supervisor.restarts == 0
    finally:
        supervisor.stop()


@pytest.mark.timeout(120)
def test_dead_worker_is_replaced_and_its_task_recovered_at_once(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    s = settings.model_copy(update={"lease_seconds": 60.0})  # recovery must not wait for lease expiry
    supervisor = make_supervisor(Client(s), s, tmp_path, min_replicas=1, max_replicas=1)
    supervisor.start()
    try:
        h = client.enqueue("record", [], {"sleep": 1.0})
        wait_until(lambda: len(runs(client)) == 1, timeout=30)
        [worker] = supervisor.workers.values()
        worker.process.send_signal(signal.SIGKILL)

        def replaced() -> bool:
            supervisor.tick()
            return supervisor.restarts == 1

        wait_until(replaced, timeout=20, interval=0.3)
        assert h.result(timeout=40) == h.id
        assert client.get_task(h.id).lost_leases == 1
    finally:
        supervisor.stop()
