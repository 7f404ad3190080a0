"""Submitting workflows: every task of a graph is created in one MULTI/EXEC transaction.

Each task is still created by the one enqueue script (dependency counters, parent registration), and the
transaction makes the whole graph appear at once: a producer that crashes before EXEC leaves nothing, so no
child can ever exist without its parents, nor a parent run while its children are still missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis
from redis.exceptions import ExecAbortError, MovedError, WatchError

from jobqueue import tracing
from jobqueue.broker.batch_enqueue import with_trace_context
from jobqueue.broker.client import Client, TaskHandle
from jobqueue.broker.enqueue import EnqueueRequest, make_request
from jobqueue.broker.enqueue_call import build_enqueue, parse_enqueue_reply
from jobqueue.broker.redis_io import ReplicaWait, is_cluster, translate_errors
from jobqueue.broker.script_cache import read_replies
from jobqueue.broker.scripts import ScriptCall, script_source
from jobqueue.canvas import Canvas, GraphNode, compile_canvas
from jobqueue.errors import JobQueueError, ValidationError
from jobqueue.keys import keys_for_task, new_task_id, queue_of

# WATCH on external parents aborts EXEC whenever one of them changes state; a few retries absorb that.
_WATCH_ATTEMPTS = 10


@dataclass(frozen=True)
class WorkflowHandle:
    """The tasks of a submitted workflow, parents before children."""

    tasks: list[TaskHandle]
    labels: dict[str, TaskHandle]  # dag labels (and positions "0", "1", ... for canvas tasks)
    sinks: list[TaskHandle]  # tasks no other task of the workflow waits on

    @property
    def ids(self) -> list[str]:
        """Every task id, parents first."""
        return [t.id for t in self.tasks]

    def result(self, timeout: float | None = None) -> Any:
        """The final task's result, or the list of results when the workflow ends in several tasks."""
        values = [sink.result(timeout=timeout) for sink in self.sinks]
        return values[0] if len(values) == 1 else values


def node_request(node: GraphNode) -> EnqueueRequest:
    """The validated enqueue request of one graph node (its id and result passing fixed by the graph)."""
    sig = node.signature
    request = make_request(sig.name, list(sig.args), dict(sig.kwargs), depends_on=node.parents, **sig.options)
    return replace(request, task_id=node.id, pass_result=node.pass_result)


def submit(client: Client, canvas: Canvas, attempts: int = _WATCH_ATTEMPTS) -> WorkflowHandle:
    """Create every task of ``canvas`` atomically and return their handles.

    ValidationError for cycles, unknown parents (in the graph, or existing task ids that do not exist).
    Works across queues on a single Redis; on Redis Cluster a workflow must live in one queue
    (ValidationError('queue') naming the queues otherwise: see refuse_cross_queue_workflow).
    """
    nodes = compile_canvas(canvas, new_task_id)
    requests = [node_request(n) for n in nodes]
    # One PRODUCER span for the whole workflow: every task of it is in the trace that submitted it.
    with tracing.send_span([r.queue for r in requests], [n.id for n in nodes]):
        return _submit(client, nodes, with_trace_context(requests), attempts)


def _submit(
    client: Client, nodes: Sequence[GraphNode], requests: Sequence[EnqueueRequest], attempts: int
) -> WorkflowHandle:
    """submit, once the requests are built."""
    calls = [build_enqueue(client.settings, r)[1] for r in requests]
    internal = {n.id for n in nodes}
    parents = sorted({p for n in nodes for p in n.parents} - internal)
    external = {p: keys_for_task(client.settings.key_prefix, p).task(p) for p in parents}
    if is_cluster(client.redis):
        refuse_cross_queue_workflow({r.queue for r in requests} | {queue_of(p) for p in parents})
    with translate_errors():
        client.redis.sadd(client.global_keys.queues, *{r.queue for r in requests})
    replies = _run_transaction(client, calls, external, attempts)
    for reply in replies:
        parse_enqueue_reply(reply)  # raises on a missing parent (not expected under WATCH)
    handles = [TaskHandle(client, n.id) for n in nodes]
    has_child = {p for n in nodes for p in n.parents}
    return WorkflowHandle(
        tasks=handles,
        labels={n.label: h for n, h in zip(nodes, handles, strict=True)},
        sinks=[h for h in handles if h.id not in has_child],
    )


def refuse_cross_queue_workflow(queues: set[str]) -> None:
    """ValidationError('queue') naming the queues when a workflow spans more than one. On Redis Cluster
    each queue lives on its own hash slot, and a workflow is created in one MULTI/EXEC whose scripts
    link parents and children: keys of several slots in one transaction or script are refused by Redis
    Cluster, and splitting it would lose the atomic, all-or-nothing submit."""
    if len(queues) > 1:
        raise ValidationError(
            "queue",
            "on Redis Cluster a workflow must live in one queue (each queue is one hash slot, and a "
            f"workflow is created atomically); this one spans queues {', '.join(sorted(queues))}",
        )


def _run_transaction(
    client: Client, calls: Sequence[ScriptCall], external: dict[str, str], attempts: int
) -> list[Any]:
    """Run the enqueue calls in one MULTI/EXEC; ``external`` maps existing parent ids to their keys.
    With JOBQUEUE_REDIS_WAIT_REPLICAS, a WAIT follows the EXEC on its connection (see _exec_and_wait)."""
    wait = ReplicaWait.of(client.settings)
    # EVAL, not EVALSHA: a NOSCRIPT inside MULTI fails one command and lets the others through, which is
    # exactly the half-written graph this transaction prevents.
    commands = [("EVAL", script_source(c.script), len(c.keys), *c.keys, *c.args) for c in calls]
    with translate_errors():
        for _ in range(attempts):
            with _transaction_connection(client, calls[0].keys[0]).pipeline(transaction=True) as pipe:
                try:
                    # Existing parents are checked and watched: if one expires or changes before EXEC,
                    # nothing is written and the check runs again. With a WAIT, the first new task's key
                    # is watched too (nobody else writes it): WATCH is how redis-py lends a pipeline its
                    # connection, and the WAIT must run on the EXEC's.
                    watched = list(external.values())
                    if wait is not None:
                        watched.append(calls[0].keys[0])
                    if watched:
                        pipe.watch(*watched)
                    missing = [p for p, key in external.items() if not pipe.exists(key)]
                    if missing:
                        raise ValidationError("depends_on", f"unknown parent task(s): {', '.join(missing)}")
                    if wait is not None:
                        return _exec_and_wait(pipe, commands, wait)
                    pipe.multi()
                    for command in commands:
                        pipe.execute_command(*command)
                    result: list[Any] = pipe.execute()
                    return result
                except WatchError:
                    continue
                except (ExecAbortError, MovedError):
                    if not is_cluster(client.redis):
                        raise
                    # The queue's slot moved to another primary (a failover or a resharding) between the
                    # slot lookup and EXEC: nothing was written; look the owner up again.
                    client.redis.nodes_manager.initialize()
    raise JobQueueError(f"workflow not submitted: its existing parents kept changing ({attempts} attempts)")


def _exec_and_wait(pipe: Any, commands: Sequence[tuple[Any, ...]], wait: ReplicaWait) -> list[Any]:
    """``MULTI``, the calls, ``EXEC`` and ``WAIT`` in one round trip on the connection the watching
    pipeline holds: WAIT covers only the writes of its own connection, and redis-py's transaction would
    give the connection back at EXEC. The replies are read in full (the connection stays in step), then:
    WatchError when a watched key changed, the first error (MOVED, EXECABORT, a script's) as redis-py's
    transaction raises it, ReplicationIncomplete when too few replicas confirmed (the graph was written)."""
    connection = pipe.connection
    sent = [("MULTI",), *commands, ("EXEC",), wait.command]
    try:
        connection.send_packed_command(connection.pack_commands(sent))
        replies = read_replies(connection, len(sent))
    except BaseException:
        connection.disconnect()  # replies may be left unread: never hand this connection out again
        raise
    pipe.watching = False  # EXEC ended the WATCH: no UNWATCH round trip when the pipeline is reset
    executed, confirmed = replies[-2], replies[-1]
    errors = [r for r in replies[:-1] if isinstance(r, Exception)]
    if errors:
        raise next((e for e in errors if not isinstance(e, ExecAbortError)), errors[0])
    if executed is None:
        raise WatchError("a watched key changed before EXEC")
    failed = [r for r in executed if isinstance(r, Exception)]
    if failed:
        raise failed[0]
    if isinstance(confirmed, Exception):
        raise confirmed
    wait.check(confirmed)
    return list(executed)


def _transaction_connection(client: Client, key: str) -> redis.Redis:
    """Where the workflow's MULTI/EXEC runs: the client itself on one Redis; on Redis Cluster the plain
    connection of the primary that owns the workflow's one slot. redis-py's cluster pipeline refuses
    transactions before redis-py 6, and a single-slot transaction is an ordinary one on its node."""
    if not is_cluster(client.redis):
        return client.redis
    cluster: Any = client.redis
    node = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key))
    if node is None or node.redis_connection is None:
        cluster.nodes_manager.initialize()
        node = cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key))
    connection: redis.Redis = node.redis_connection
    return connection
