"""The local supervisor of `jobqueue up`: scales real worker processes from queue depth and replaces dead
ones, with the same pure decisions the operator uses."""

from __future__ import annotations

import collections
import signal
import time
from pathlib import Path

import pytest
from jq_testing import runs, wait_until, worker_env

from jobqueue import Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.scaling import ScalingPolicy
from jobqueue.services.supervisor import LocalSupervisor


def make_supervisor(
    client: Client,
    settings: Settings,
    tmp_path: Path,
    *,
    drain_timeout_seconds: float = 90,
    **policy: float,
) -> LocalSupervisor:
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
        drain_timeout_seconds=drain_timeout_seconds,
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


@pytest.mark.timeout(120)
def test_draining_worker_is_never_replaced_for_its_silence_and_killed_only_past_its_deadline(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    """A drained worker stops heartbeating and deregisters before its process exits, seconds later on a
    loaded machine. Taking that silence for a hang killed and replaced it, which undid the scale-down
    (the flake of the test above under CPU load). A stopped process stands in for the slow exit."""
    supervisor = make_supervisor(
        client, settings, tmp_path, drain_timeout_seconds=25, min_replicas=0, max_replicas=1
    )
    supervisor.start()
    [worker] = supervisor.workers.values()
    try:
        wait_until(lambda: worker.worker_id in {w.id for w in client.list_workers()}, timeout=60)
        worker.process.send_signal(signal.SIGSTOP)
        supervisor.tick()  # nothing queued and no minimum: it is asked to drain
        asked = worker.drain_requested_at
        assert asked is not None and supervisor.replicas == 0
        wait_until(lambda: time.monotonic() > asked + 12, timeout=30)
        supervisor.tick()  # silent for longer than heartbeat_stale_seconds (10), yet still draining
        assert supervisor.restarts == 0 and list(supervisor.workers) == [worker.worker_id]
        assert worker.process.poll() is None

        wait_until(lambda: time.monotonic() > asked + 25, timeout=30)
        supervisor.tick()
        assert worker.process.returncode == -signal.SIGKILL  # past its deadline: killed
        assert supervisor.workers == {} and supervisor.restarts == 0  # and not replaced
    finally:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)
        supervisor.stop()
