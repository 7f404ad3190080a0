"""The pools the REST API manages under `jobqueue up`: the fleet turns the specs in Redis into real worker
processes (create, scale, change queues, delete with a drain) and reports status and events back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jq_testing import wait_until, worker_env

from jobqueue import Client, Settings
from jobqueue.broker.worker_pools import PoolStore
from jobqueue.pools import PoolAutoscaling, PoolSpec
from jobqueue.services.pool_fleet import PoolFleet


@pytest.fixture
def fleet(client: Client, settings: Settings, tmp_path: Path) -> Iterator[PoolFleet]:
    env = worker_env(settings)
    fleet = PoolFleet(
        client, app_spec="jq_test_app:app", log_dir=tmp_path, env=env, heartbeat_stale_seconds=10
    )
    try:
        yield fleet
    finally:
        fleet.stop()


def live_workers(client: Client, prefix: str) -> set[str]:
    return {w.id for w in client.list_workers() if w.id.startswith(prefix)}


@pytest.mark.timeout(150)
def test_create_scale_change_and_delete_run_real_workers(client: Client, fleet: PoolFleet) -> None:
    store = PoolStore(client)
    store.create(PoolSpec("mail", ("mail",), concurrency=2, replicas=2))
    fleet.tick()
    wait_until(lambda: len(live_workers(client, "pool-mail-")) == 2, timeout=60, interval=0.2)
    handle = client.enqueue("add", [2, 3], queue="mail")
    assert handle.result(timeout=30) == 5

    def status_ready(n: int) -> bool:
        fleet.tick()
        status = store.statuses().get("mail")
        return status is not None and status.replicas == n and status.ready == n

    wait_until(lambda: status_ready(2), timeout=30, interval=0.3)

    # Scale down by hand: one worker drains and exits, none is replaced.
    store.update("mail", lambda s: s.scaled(1), "Scaled", "to 1")
    wait_until(
        lambda: status_ready(1) and len(live_workers(client, "pool-mail-")) == 1, timeout=60, interval=0.3
    )

    # New queues: the workers are rolled onto them.
    store.update("mail", lambda s: s.changed(queues=("mail", "bulk")), "Updated", "queues")
    fleet.tick()
    assert client.enqueue("add", [1, 1], queue="bulk").result(timeout=60) == 2

    # Delete: every worker drains, the status goes, the history says each step.
    store.delete("mail")

    def gone() -> bool:
        fleet.tick()
        no_workers = not live_workers(client, "pool-mail-")
        return not fleet.retiring and no_workers and "mail" not in store.statuses()

    wait_until(gone, timeout=90, interval=0.3)
    kinds = [e.kind for e in reversed(store.events("mail"))]
    assert kinds[:3] == ["Created", "Started", "ScaledUp"]
    for kind in ["Scaled", "ScaledDown", "Updated", "Restarted", "Deleting", "Draining", "Drained"]:
        assert kind in kinds, kinds


@pytest.mark.timeout(120)
def test_autoscaling_follows_the_backlog_and_zero_replicas_hold(client: Client, fleet: PoolFleet) -> None:
    store = PoolStore(client)
    store.create(PoolSpec("idle", ("idle",), replicas=0))
    fleet.tick()
    assert fleet.running["idle"].supervisor.replicas == 0
    auto = PoolAutoscaling(enabled=True, min_replicas=0, max_replicas=2, target_tasks_per_replica=5)
    store.update("idle", lambda s: s.changed(autoscaling=auto), "AutoscalingChanged", "on")
    for _ in range(8):
        client.enqueue("add", [1, 1], queue="idle")
    fleet.tick()
    assert fleet.running["idle"].supervisor.replicas == 2  # ceil(8 / 5)
    assert store.events("idle")[0].kind == "ScaledUp"


@pytest.mark.timeout(60)
def test_an_unreadable_spec_does_not_stop_the_others(client: Client, fleet: PoolFleet) -> None:
    store = PoolStore(client)
    client.redis.hset(client.global_keys.pools, "broken", "{not json")  # edited by hand
    store.create(PoolSpec("fine", ("fine",), replicas=0))
    fleet.tick()
    assert set(fleet.running) == {"fine"}
