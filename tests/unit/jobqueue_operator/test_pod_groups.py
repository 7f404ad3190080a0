"""A pod running ``jobqueue worker --processes N`` is a group of N workers (ids ``<pod>_<i>``): it is
stale when any of them stops heartbeating, its load and drain state sum over them, a drain or a lease
recovery addresses all of them, and a lease holder maps back to its pod by its id alone."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from jobqueue.scaling import orphaned_workers, silent_workers, stale_workers
from jobqueue_operator.kube import pod_view
from jobqueue_operator.manifests import Owner, worker_args, worker_deployment
from jobqueue_operator.pool_plan import (
    PROCESSES_ANNOTATION,
    Heartbeat,
    PodView,
    PoolLoad,
    plan_pool,
    worker_views,
)
from jobqueue_operator.spec import WorkerPoolSpec

NOW = 1_000_000.0


def spec(**overrides: Any) -> WorkerPoolSpec:
    body: dict[str, Any] = {
        "queues": ["q"],
        "image": "img",
        "app": "m:app",
        "processes": 2,
        "autoscaling": {
            "enabled": True, "minReplicas": 1, "maxReplicas": 6, "targetTasksPerReplica": 10,
            "scaleUpCooldownSeconds": 0, "scaleDownCooldownSeconds": 0, "maxStep": 4,
        },
        "health": {"heartbeatStaleSeconds": 10, "leaseOrphanSeconds": 20},
    }  # fmt: skip
    body.update(overrides)
    return WorkerPoolSpec.model_validate(body)


def pod(name: str, *, processes: int = 2, drain: bool = False, started: float = NOW - 100) -> PodView:
    return PodView(
        name,
        running=True,
        ready=True,
        started_at=started,
        created_at=started,
        drain_requested=drain,
        processes=processes,
    )


def beat(in_flight: int = 0, draining: bool = False, age: float = 1.0) -> Heartbeat:
    return Heartbeat(at=NOW - age, in_flight=in_flight, draining=draining)


def plan(pods: list[PodView], beats: dict[str, Heartbeat], ready: int, in_flight: int = 0) -> Any:
    return plan_pool(
        spec(),
        current=len(pods),
        pods=pods,
        heartbeats=beats,
        load=PoolLoad(ready=ready, in_flight=in_flight),
        last_scale_time=None,
        now=NOW,
    )


def test_a_pod_is_stale_when_any_of_its_workers_stops_heartbeating() -> None:
    running = {"a": NOW - 100, "b": NOW - 100}
    beats = {"a_0": NOW - 1, "a_1": NOW - 1, "b_0": NOW - 1, "b_1": NOW - 30}
    assert stale_workers(running, beats, NOW, 10, {"a": 2, "b": 2}) == ["b"]


def test_a_worker_process_that_never_heartbeated_gets_the_threshold_to_boot() -> None:
    beats = {"a_0": NOW - 1}
    assert stale_workers({"a": NOW - 5}, beats, NOW, 10, {"a": 2}) == []
    assert stale_workers({"a": NOW - 50}, beats, NOW, 10, {"a": 2}) == ["a"]


def test_one_process_pods_are_judged_by_the_pod_name_as_before() -> None:
    assert stale_workers({"a": NOW - 100}, {"a": NOW - 1}, NOW, 10) == []
    assert stale_workers({"a": NOW - 100}, {"a_0": NOW - 1}, NOW, 10) == ["a"]


def test_lease_holders_map_to_their_pod_without_a_heartbeat() -> None:
    holders = ["live_0", "live_1", "gone_0", "gone_1", "ghost", "recent_0"]
    beats = {"recent_0": NOW - 1}
    assert orphaned_workers(holders, beats, ["live"], NOW, 20) == ["ghost", "gone_0", "gone_1"]


def test_a_pods_load_and_drain_state_sum_over_its_workers() -> None:
    pods = [pod("a", drain=True), pod("b", drain=True)]
    views = worker_views(pods, {"a_0": beat(2, draining=True), "a_1": beat(1), "b_0": beat(0, draining=True)})
    a, b = views
    assert (a.in_flight, a.draining) == (3, False)  # a_1 has not stopped fetching yet
    assert (b.in_flight, b.draining) == (0, True)  # b_1 already exited (no heartbeat left)


def test_scale_down_addresses_every_worker_of_the_chosen_pod() -> None:
    pods = [pod("a"), pod("b")]
    beats = {"a_0": beat(3), "a_1": beat(2), "b_0": beat(0), "b_1": beat(1)}
    p = plan(pods, beats, ready=0, in_flight=6)
    assert p.request_drain == ["b"]
    assert p.workers_of("b") == ["b_0", "b_1"]


def test_a_pod_is_removed_only_once_all_its_workers_drained() -> None:
    pods = [pod("a"), pod("b", drain=True)]
    busy = plan(
        pods,
        {"a_0": beat(1), "a_1": beat(0), "b_0": beat(0, draining=True), "b_1": beat(1, draining=True)},
        0,
        2,
    )
    assert (busy.replicas, busy.remove) == (2, [])
    done = plan(
        pods,
        {"a_0": beat(1), "a_1": beat(0), "b_0": beat(0, draining=True), "b_1": beat(0, draining=True)},
        0,
        1,
    )
    assert (done.replicas, done.remove) == (1, ["b"])


def test_only_the_silent_workers_of_a_stale_pod_lose_their_leases_at_once() -> None:
    pods = [pod("a"), pod("b", processes=3)]
    beats = {"a_0": beat(), "a_1": beat(), "b_0": beat(), "b_1": beat(age=60), "b_2": beat()}
    p = plan(pods, beats, ready=10)
    assert p.stale == ["b"]
    # b_0 and b_2 are alive: they drain on the pod's SIGTERM and finish their own tasks.
    assert p.silent == {"b": ["b_1"]}
    assert p.workers_of("b") == ["b_0", "b_1", "b_2"]


def test_silent_workers_of_a_pod() -> None:
    ids = ["p_0", "p_1", "p_2"]
    assert silent_workers(ids, NOW - 100, {"p_0": NOW - 1, "p_1": NOW - 50}, NOW, 10) == ["p_1", "p_2"]
    assert silent_workers(ids, NOW - 5, {"p_0": NOW - 1}, NOW, 10) == []  # still booting


def test_the_deployment_runs_the_processes_and_annotates_their_count() -> None:
    owner = Owner("pool", "ns", "uid")
    d = worker_deployment(owner, spec(processes=3), replicas=1)
    assert d["spec"]["template"]["metadata"]["annotations"][PROCESSES_ANNOTATION] == "3"
    assert worker_args(spec(processes=3))[-2:] == ["--processes", "3"]
    # One process: the pod template of before (no rollout of existing pools on an operator upgrade).
    single = worker_deployment(owner, spec(processes=1), replicas=1)
    assert PROCESSES_ANNOTATION not in single["spec"]["template"]["metadata"]["annotations"]
    assert "--processes" not in worker_args(spec(processes=1))


def test_pod_view_reads_the_process_count_and_defaults_to_one() -> None:
    def kube_pod(annotations: dict[str, str] | None) -> Any:
        return SimpleNamespace(
            metadata=SimpleNamespace(
                name="p", creation_timestamp=None, annotations=annotations, deletion_timestamp=None
            ),
            status=SimpleNamespace(conditions=[], phase="Running", start_time=None),
        )

    assert pod_view(kube_pod({PROCESSES_ANNOTATION: "4"})).worker_ids == ["p_0", "p_1", "p_2", "p_3"]
    assert pod_view(kube_pod(None)).worker_ids == ["p"]
    assert pod_view(kube_pod({PROCESSES_ANNOTATION: "many"})).processes == 1
