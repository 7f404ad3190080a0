"""Worker ids of ``jobqueue worker --processes``: one process keeps its id, N name their pod."""

from __future__ import annotations

import pytest

from jobqueue.worker_ids import group_by_pod, pod_of, pod_worker_ids, process_worker_id


def test_one_process_keeps_the_pod_name_as_its_id() -> None:
    assert process_worker_id("billing-7d9f8-x2k4q", 0, 1) == "billing-7d9f8-x2k4q"
    assert pod_worker_ids("billing-7d9f8-x2k4q", 1) == ["billing-7d9f8-x2k4q"]


def test_several_processes_are_numbered_under_their_pod() -> None:
    assert pod_worker_ids("billing-7d9f8-x2k4q", 3) == [
        "billing-7d9f8-x2k4q_0",
        "billing-7d9f8-x2k4q_1",
        "billing-7d9f8-x2k4q_2",
    ]


@pytest.mark.parametrize("processes", [1, 2, 5])
def test_every_id_parses_back_to_its_pod(processes: int) -> None:
    for worker_id in pod_worker_ids("web-1.example-abc", processes):
        assert pod_of(worker_id) == "web-1.example-abc"


@pytest.mark.parametrize(
    ("worker_id", "pod"),
    [
        ("ghost", "ghost"),  # an id with no process suffix is its own pod
        ("host-1234-0af3", "host-1234-0af3"),
        ("my_worker", "my_worker"),  # '_' but no number after it: not a process suffix
        ("_3", "_3"),
        ("a_b_12", "a_b"),  # only the last suffix is the process
    ],
)
def test_ids_outside_the_scheme_are_their_own_pod(worker_id: str, pod: str) -> None:
    assert pod_of(worker_id) == pod


def test_out_of_range_process_index_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        process_worker_id("p", 2, 2)
    with pytest.raises(ValueError, match="out of range"):
        process_worker_id("p", 0, 0)


def test_group_by_pod_collects_a_pods_workers() -> None:
    assert group_by_pod(["a_1", "b", "a_0", "c_0"]) == {"a": ["a_0", "a_1"], "b": ["b"], "c": ["c_0"]}
