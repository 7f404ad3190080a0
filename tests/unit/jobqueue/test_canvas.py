"""Pure workflow compilation and DAG validation: no Redis."""

from __future__ import annotations

import itertools

import pytest

from jobqueue.broker.enqueue import make_request
from jobqueue.broker.enqueue_call import unique_digest
from jobqueue.canvas import GraphNode, Signature, chain, chord, compile_canvas, dag, group, topological_order
from jobqueue.errors import ValidationError

pytestmark = pytest.mark.timeout(10)


def ids() -> object:
    counter = itertools.count()
    return lambda queue: f"{queue}.{next(counter):032x}"


def compile_(canvas: object) -> list[GraphNode]:
    return compile_canvas(canvas, ids())  # type: ignore[arg-type]


def s(name: str, *args: object, immutable: bool = False) -> Signature:
    return Signature(name, args, immutable=immutable)


def test_chain_links_each_step_to_the_previous_and_passes_one_result() -> None:
    a, b, c = compile_(chain(s("a", 1), s("b"), s("c", immutable=True)))
    assert (a.parents, b.parents, c.parents) == ((), (a.id,), (b.id,))
    assert (a.pass_result, b.pass_result, c.pass_result) == ("", "first", "")


def test_pipe_operator_builds_the_same_chain() -> None:
    piped = s("a") | s("b") | s("c")
    assert piped == chain(s("a"), s("b"), s("c"))


def test_chord_callback_waits_on_every_member_and_receives_a_list() -> None:
    nodes = compile_(chord(group(s("m", i) for i in range(3)), s("total")))
    members, callback = nodes[:3], nodes[3]
    assert callback.parents == tuple(m.id for m in members)
    assert callback.pass_result == "list"
    assert all(m.parents == () for m in members)


def test_group_after_a_task_fans_out_and_each_member_gets_the_result() -> None:
    root, *members = compile_(chain(s("root"), group(s("x"), s("y"))))
    assert [m.parents for m in members] == [(root.id,), (root.id,)]
    assert {m.pass_result for m in members} == {"first"}


def test_diamond_dag_is_ordered_parents_first() -> None:
    graph = dag(
        {"d": s("d"), "b": s("b"), "c": s("c"), "a": s("a")},
        {"b": ["a"], "c": ["a"], "d": ["b", "c"]},
    )
    nodes = compile_(graph)
    labels = [n.label for n in nodes]
    assert labels[0] == "a" and labels[-1] == "d"
    by_label = {n.label: n for n in nodes}
    assert by_label["d"].parents == (by_label["b"].id, by_label["c"].id)
    assert by_label["d"].pass_result == "list"


def test_cycle_is_rejected_with_its_path() -> None:
    graph = dag({"a": s("a"), "b": s("b"), "c": s("c")}, {"a": ["c"], "b": ["a"], "c": ["b"]})
    with pytest.raises(ValidationError, match=r"cycle: (a|b|c) -> .* -> \1") as info:
        compile_(graph)
    assert info.value.field == "depends_on"


def test_self_dependency_and_unknown_parents_are_rejected() -> None:
    with pytest.raises(ValidationError, match="depends on itself"):
        compile_(dag({"a": s("a")}, {"a": ["a"]}))
    with pytest.raises(ValidationError, match="unknown task 'nope'"):
        compile_(dag({"a": s("a")}, {"a": ["nope"]}))
    with pytest.raises(ValidationError, match="unknown nodes"):
        compile_(dag({"a": s("a")}, {"zz": ["a"]}))


def test_existing_task_ids_are_accepted_as_external_parents() -> None:
    existing = "default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f"
    [node] = compile_(dag({"a": s("a")}, {"a": [existing]}))
    assert node.parents == (existing,)


def test_topological_order_is_stable() -> None:
    assert topological_order({"x": [], "y": [], "z": ["x"]}) == ["x", "y", "z"]


def test_dedup_is_not_an_option_inside_a_workflow() -> None:
    with pytest.raises(ValidationError, match="unique"):
        s("a").set(unique=True)
    with pytest.raises(ValidationError, match="unique"):
        compile_(Signature("a", options={"unique": True}))


def test_signature_is_a_pure_value() -> None:
    sig = s("a", 1).set(queue="q1")
    assert sig.options == {"queue": "q1"} and s("a", 1).options == {}
    [node] = compile_(sig)
    assert node.id.startswith("q1.")


def test_unique_digest_is_the_signature_or_the_explicit_key() -> None:
    one = make_request("t", [1], {"a": 1, "b": 2}, unique=True)
    same = make_request("t", [1], {"b": 2, "a": 1}, unique=True)
    other = make_request("t", [2], unique=True)
    assert unique_digest(one) == unique_digest(same) != unique_digest(other)
    keyed = make_request("t", [1], unique_key="order-42")
    assert keyed.unique and unique_digest(keyed) == unique_digest(
        make_request("u", [9], unique_key="order-42")
    )


def test_bad_dedup_and_dependency_options_name_their_field() -> None:
    with pytest.raises(ValidationError) as info:
        make_request("t", unique=True, unique_ttl=0)
    assert info.value.field == "unique_ttl"
    with pytest.raises(ValidationError) as info:
        make_request("t", depends_on=["not-an-id"])
    assert info.value.field == "depends_on"
    with pytest.raises(ValidationError):
        make_request("t", depends_on="default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f")  # type: ignore[arg-type]
