"""One WorkerPool reconcile, decided purely: scale up at once, scale down only through drained workers,
stale pods found, spec.replicas obeyed when autoscaling is off."""

from __future__ import annotations

from typing import Any

from jobqueue_operator.pool_plan import (
    Heartbeat,
    PodView,
    PoolLoad,
    initial_replicas,
    plan_pool,
    split_drains,
    worker_views,
)
from jobqueue_operator.spec import WorkerPoolSpec

NOW = 1_000_000.0


def spec(**overrides: Any) -> WorkerPoolSpec:
    body: dict[str, Any] = {
        "queues": ["q"],
        "image": "img",
        "app": "m:app",
        "autoscaling": {
            "enabled": True, "minReplicas": 1, "maxReplicas": 6, "targetTasksPerReplica": 10,
            "scaleUpCooldownSeconds": 0, "scaleDownCooldownSeconds": 0, "maxStep": 4,
        },
        "health": {"heartbeatStaleSeconds": 10, "leaseOrphanSeconds": 20},
    }  # fmt: skip
    body.update(overrides)
    return WorkerPoolSpec.model_validate(body)


def pod(name: str, *, drain: bool = False, started: float = NOW - 100) -> PodView:
    return PodView(
        name, running=True, ready=True, started_at=started, created_at=started, drain_requested=drain
    )


def beat(in_flight: int = 0, draining: bool = False, age: float = 1.0) -> Heartbeat:
    return Heartbeat(at=NOW - age, in_flight=in_flight, draining=draining)


def plan(
    s: WorkerPoolSpec, pods: list[PodView], beats: dict[str, Heartbeat], ready: int, in_flight: int = 0
) -> Any:
    return plan_pool(
        s,
        current=len(pods),
        pods=pods,
        heartbeats=beats,
        load=PoolLoad(ready=ready, in_flight=in_flight),
        last_scale_time=None,
        now=NOW,
    )


def test_backlog_scales_up_at_once_by_at_most_max_step() -> None:
    p = plan(spec(), [pod("a")], {"a": beat(2)}, ready=100)
    assert (p.current, p.replicas, p.request_drain, p.remove) == (1, 5, [], [])


def test_scale_down_drains_idle_workers_first_and_keeps_replicas() -> None:
    pods = [pod("a"), pod("b"), pod("c")]
    p = plan(spec(), pods, {"a": beat(3), "b": beat(0), "c": beat(1)}, ready=0, in_flight=4)
    assert p.replicas == 3  # nothing removed before the drain completes
    assert p.request_drain == ["b", "c"]


def test_replicas_drop_only_once_every_chosen_worker_drained() -> None:
    pods = [pod("a"), pod("b", drain=True), pod("c", drain=True)]
    still_busy = plan(
        spec(), pods, {"a": beat(1), "b": beat(0, draining=True), "c": beat(1, draining=True)}, 0, 2
    )
    assert (still_busy.replicas, still_busy.remove, still_busy.request_drain) == (3, [], [])
    # b and c drained and exited (a drained worker deregisters: no heartbeat left).
    done = plan(spec(), pods, {"a": beat(1)}, ready=0, in_flight=1)
    assert (done.replicas, done.remove) == (1, ["b", "c"])


def test_a_drained_pod_is_not_mistaken_for_a_stale_one() -> None:
    pods = [pod("a"), pod("b", drain=True)]
    p = plan(spec(), pods, {"a": beat(0, age=1)}, ready=0)
    assert p.stale == []
    assert p.remove == ["b"]


def test_stale_pods_are_reported_and_not_chosen_for_drain() -> None:
    pods = [pod("a"), pod("b")]
    p = plan(spec(), pods, {"a": beat(0), "b": beat(0, age=60)}, ready=0)
    assert p.stale == ["b"]
    assert "b" not in p.request_drain


def test_without_autoscaling_spec_replicas_rules_and_still_drains_first() -> None:
    manual = spec(autoscaling={"enabled": False}, replicas=1)
    pods = [pod("a"), pod("b")]
    p = plan(manual, pods, {"a": beat(2), "b": beat(0)}, ready=500)
    assert p.decision is None
    assert (p.replicas, p.request_drain) == (2, ["b"])
    assert plan(spec(autoscaling={"enabled": False}, replicas=4), pods, {}, ready=0).replicas == 4


def test_initial_replicas_respect_autoscaling_bounds() -> None:
    assert initial_replicas(spec(replicas=0)) == 1
    assert initial_replicas(spec(replicas=50)) == 6
    assert initial_replicas(spec(replicas=0, autoscaling={"enabled": False})) == 0


def test_a_returning_backlog_calls_off_the_drains_instead_of_scaling_down() -> None:
    pods = [pod("a"), pod("b", drain=True), pod("c", drain=True)]
    held = {"a": beat(1), "b": beat(0, draining=True), "c": beat(0, draining=True)}
    # b and c have drained, but the work came back: keep three replicas and let b and c fetch again.
    p = plan(spec(), pods, held, ready=25, in_flight=1)
    assert (p.replicas, p.remove, p.call_off_drain, p.draining) == (3, [], ["b", "c"], [])


def test_a_smaller_scale_down_keeps_the_drains_furthest_along() -> None:
    pods = [pod("a"), pod("b", drain=True), pod("c", drain=True), pod("d")]
    beats = {"a": beat(2), "b": beat(1, draining=True), "c": beat(0, draining=True), "d": beat(2)}
    # Load for 3 replicas out of 4: one drain is enough; c (idle) is kept, b's is called off.
    p = plan(spec(), pods, beats, ready=0, in_flight=25)
    assert (p.call_off_drain, p.draining) == (["b"], ["c"])
    assert (p.replicas, p.remove) == (3, ["c"])


def test_a_cooldown_calls_off_a_drain() -> None:
    slow = spec(
        autoscaling={"enabled": True, "minReplicas": 1, "maxReplicas": 6, "scaleDownCooldownSeconds": 600}
    )
    pods = [pod("a"), pod("b", drain=True)]
    p = plan_pool(
        slow,
        current=2,
        pods=pods,
        heartbeats={"a": beat(0), "b": beat(0, draining=True)},
        load=PoolLoad(ready=0, in_flight=0),
        last_scale_time=NOW - 10,
        now=NOW,
    )
    assert (p.replicas, p.call_off_drain, p.remove) == (2, ["b"], [])


def test_raising_spec_replicas_calls_off_a_drain_and_scales_up() -> None:
    manual = spec(autoscaling={"enabled": False}, replicas=4)
    pods = [pod("a"), pod("b", drain=True)]
    p = plan(manual, pods, {"a": beat(0), "b": beat(0, draining=True)}, ready=0)
    assert (p.replicas, p.call_off_drain, p.request_drain) == (4, ["b"], [])


def test_split_drains_keeps_all_when_all_are_needed() -> None:
    workers = worker_views([pod("b", drain=True)], {"b": beat(0, draining=True)})
    assert split_drains(workers, ["b"], 1) == (["b"], [])
    assert split_drains(workers, ["b"], 0) == ([], ["b"])
    assert split_drains(workers, [], 3) == ([], [])
