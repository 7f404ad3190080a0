"""Workflows as values: task signatures, ``chain`` / ``|``, ``group``, ``chord`` and explicit ``dag``s,
compiled to a validated graph of tasks. Pure: no I/O; submission lives in ``jobqueue.broker.workflows``.

A ``Signature`` (``task.s(...)``) receives its parent's result as its first argument; ``task.si(...)`` is
immutable and never does. After a group, the next step receives the list of the members' results (a chord).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from jobqueue.errors import ValidationError
from jobqueue.keys import queue_of

# The handle a submitter returns (jobqueue.broker.workflows.WorkflowHandle for App). A type parameter
# rather than an import: canvas is the pure model and must not depend on the broker that submits it.
_HandleT_co = TypeVar("_HandleT_co", covariant=True)
HandleT = TypeVar("HandleT")

# Options a signature may carry into make_request; dedup is per task and has no meaning inside a graph
# (a deduplicated node would leave its children waiting on a task the graph does not know).
SIGNATURE_OPTIONS = frozenset(
    {"queue", "priority", "countdown", "eta", "max_retries", "timeout", "soft_timeout", "result_ttl"}
)


class Submitter(Protocol[_HandleT_co]):
    """Anything that can submit a workflow (``App``), returning its own kind of handle."""

    def submit_workflow(self, canvas: Canvas) -> _HandleT_co:
        """Create every task of ``canvas`` at once."""
        ...


class _Composable:
    def __or__(self, other: Canvas) -> Chain:
        return chain(self, other)  # type: ignore[arg-type]

    def apply(self, app: Submitter[HandleT]) -> HandleT:
        """Submit the whole graph atomically (one MULTI/EXEC); see jobqueue.broker.workflows.submit."""
        return app.submit_workflow(self)  # type: ignore[arg-type]


@dataclass(frozen=True, eq=True)
class Signature(_Composable):
    """One task call to make: name, arguments and enqueue options. A pure value."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    immutable: bool = False  # True: never receives a parent's result

    __hash__ = None  # type: ignore[assignment]  # holds dicts

    def set(self, **options: Any) -> Signature:
        """A copy with enqueue options changed (queue, priority, countdown, max_retries, ...)."""
        unknown = set(options) - SIGNATURE_OPTIONS
        if unknown:
            raise ValidationError("options", f"not allowed in a workflow: {', '.join(sorted(unknown))}")
        return replace(self, options={**self.options, **options})


@dataclass(frozen=True)
class Chain(_Composable):
    """Steps run one after another; each starts when the previous one succeeded."""

    tasks: tuple[Canvas, ...]


@dataclass(frozen=True)
class Group(_Composable):
    """Members run in parallel; a following step waits for all of them."""

    tasks: tuple[Canvas, ...]


@dataclass(frozen=True)
class Chord(_Composable):
    """A group and a callback that runs once, after every member succeeded, with the list of results."""

    header: Group
    body: Canvas


@dataclass(frozen=True)
class Dag(_Composable):
    """An explicit graph: ``nodes`` by label, ``edges`` label -> parent labels or existing task ids."""

    nodes: Mapping[str, Signature]
    edges: Mapping[str, Sequence[str]]

    __hash__ = None  # type: ignore[assignment]


Canvas = Signature | Chain | Group | Chord | Dag


def _flatten(tasks: tuple[Any, ...]) -> tuple[Canvas, ...]:
    """Several canvases, or one iterable of them, as a tuple of canvases."""
    items: tuple[Any, ...] = tasks
    if len(items) == 1 and not isinstance(items[0], _Composable):
        items = tuple(items[0])
    for item in items:
        if not isinstance(item, _Composable):
            raise ValidationError("workflow", f"{item!r} is not a signature, chain, group, chord or dag")
    return items


def chain(*tasks: Canvas) -> Chain:
    """``chain(a.s(1), b.s(), c.s())``: a, then b with a's result, then c with b's result."""
    flat: list[Canvas] = []
    for item in _flatten(tasks):
        flat.extend(item.tasks if isinstance(item, Chain) else (item,))
    if not flat:
        raise ValidationError("workflow", "a chain needs at least one task")
    return Chain(tuple(flat))


def group(*tasks: Canvas | Iterable[Canvas]) -> Group:
    """``group(a.s(1), a.s(2))`` or ``group(a.s(i) for i in ...)``: run in parallel."""
    items = _flatten(tasks)
    if not items:
        raise ValidationError("workflow", "a group needs at least one task")
    return Group(items)


def chord(header: Group | Iterable[Canvas], body: Canvas) -> Chord:
    """``chord(group(...), callback.s())``: the callback gets the list of member results, once."""
    return Chord(header if isinstance(header, Group) else group(header), body)


def dag(nodes: Mapping[str, Signature], edges: Mapping[str, Sequence[str]] | None = None) -> Dag:
    """An explicit DAG, e.g. a diamond: ``dag({"a": .., "b": .., "c": .., "d": ..},
    {"b": ["a"], "c": ["a"], "d": ["b", "c"]})``. Cycles and unknown parents are rejected at submit."""
    return Dag(dict(nodes), {k: list(v) for k, v in (edges or {}).items()})


@dataclass(frozen=True)
class GraphNode:
    """One task of a compiled workflow: its id, signature, parent ids and how it receives their results."""

    id: str
    label: str
    signature: Signature
    parents: tuple[str, ...]
    pass_result: str  # '' | 'first' | 'list'


NewId = Callable[[str], str]  # queue -> fresh task id


class _Compiler:
    def __init__(self, new_id: NewId) -> None:
        self.new_id = new_id
        self.nodes: list[GraphNode] = []

    def add(
        self, canvas: Canvas, parents: tuple[str, ...], after_group: bool
    ) -> tuple[tuple[str, ...], bool]:
        """Compile ``canvas`` below ``parents``; returns (its sink ids, whether they form a group)."""
        if isinstance(canvas, Signature):
            return (self._task(canvas, parents, after_group, str(len(self.nodes))),), False
        if isinstance(canvas, Chain):
            sinks, is_group = parents, after_group
            for step in canvas.tasks:
                sinks, is_group = self.add(step, sinks, is_group)
            return sinks, is_group
        if isinstance(canvas, Group):
            out: list[str] = []
            for member in canvas.tasks:
                out.extend(self.add(member, parents, after_group)[0])
            return tuple(out), True
        if isinstance(canvas, Chord):
            sinks, _ = self.add(canvas.header, parents, after_group)
            return self.add(canvas.body, sinks, True)
        return self._dag(canvas, parents, after_group)

    def _task(self, sig: Signature, parents: tuple[str, ...], after_group: bool, label: str) -> str:
        if not isinstance(sig.name, str) or not sig.name:
            raise ValidationError("workflow", f"{sig!r} has no task name")
        mode = "" if sig.immutable or not parents else ("list" if after_group else "first")
        node_id = self.new_id(str(sig.options.get("queue", "default")))
        self.nodes.append(GraphNode(node_id, label, sig, parents, mode))
        return node_id

    def _dag(self, graph: Dag, parents: tuple[str, ...], after_group: bool) -> tuple[tuple[str, ...], bool]:
        unknown = set(graph.edges) - set(graph.nodes)
        if unknown:
            raise ValidationError("depends_on", f"edges name unknown nodes: {', '.join(sorted(unknown))}")
        order = topological_order({label: tuple(graph.edges.get(label, ())) for label in graph.nodes})
        ids: dict[str, str] = {}
        has_child: set[str] = set()
        for label in order:
            deps = graph.edges.get(label, ())
            has_child.update(deps)
            # Roots of the dag hang below whatever precedes it; edges name labels or existing task ids.
            node_parents = tuple(ids.get(d, d) for d in deps) or parents
            # A mutable node with several parents gets their results as a list, as after a group.
            several = len(deps) > 1 if deps else after_group
            ids[label] = self._task(graph.nodes[label], node_parents, several, label)
        return tuple(ids[label] for label in order if label not in has_child), True


def topological_order(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Node labels so that parents come first (Kahn's algorithm, stable in input order).

    ``edges`` maps every node to its parents. A parent that is not a node must be an existing task id;
    anything else is an unknown parent. A cycle is reported with its path. Both raise ValidationError.
    """
    for node, parents in edges.items():
        for parent in parents:
            if parent == node:
                raise ValidationError("depends_on", f"{node!r} depends on itself")
            if parent not in edges and not _is_task_id(parent):
                raise ValidationError("depends_on", f"{node!r} depends on unknown task {parent!r}")
    waiting = {node: sum(1 for p in set(parents) if p in edges) for node, parents in edges.items()}
    children: dict[str, list[str]] = {node: [] for node in edges}
    for node, parents in edges.items():
        for parent in set(parents):
            if parent in edges:
                children[parent].append(node)
    ready = [node for node, count in waiting.items() if count == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for child in children[node]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(order) < len(edges):
        raise ValidationError("depends_on", f"cycle: {' -> '.join(_find_cycle(edges, set(order)))}")
    return order


def _find_cycle(edges: Mapping[str, Sequence[str]], done: set[str]) -> list[str]:
    """One cycle among the nodes Kahn's algorithm could not order, as a path that ends where it began."""
    node = next(n for n in edges if n not in done)
    path: list[str] = []
    seen: dict[str, int] = {}
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(p for p in edges[node] if p in edges and p not in done)
    cycle = [*path[seen[node] :], node]
    return cycle[::-1]  # parents were followed; print in the direction work would flow


def _is_task_id(value: str) -> bool:
    try:
        queue_of(value)
    except ValidationError:
        return False
    return True


def compile_canvas(canvas: Canvas, new_id: NewId) -> list[GraphNode]:
    """The tasks of a workflow in submission order (every parent before its children), validated.

    Rejects (ValidationError) cycles, unknown parents and options that make no sense inside a graph.
    """
    if not isinstance(canvas, _Composable):
        raise ValidationError("workflow", f"{canvas!r} is not a signature, chain, group, chord or dag")
    compiler = _Compiler(new_id)
    compiler.add(canvas, (), False)
    for node in compiler.nodes:
        unknown = set(node.signature.options) - SIGNATURE_OPTIONS
        if unknown:
            raise ValidationError("options", f"not allowed in a workflow: {', '.join(sorted(unknown))}")
    # Compilation already emits parents first; re-checking the id graph guards every later change to it.
    by_id = {n.id: n for n in compiler.nodes}
    order = topological_order({n.id: n.parents for n in compiler.nodes})
    return [by_id[i] for i in order]
