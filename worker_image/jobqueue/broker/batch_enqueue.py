"""Enqueue many tasks in few script calls: the pure planning and reply parsing, no I/O.

Plain requests (no dependencies, no deduplication, no caller-chosen id) that follow each other with the
same queue and spec (name, priority, options) become one ``enqueue_many`` call of up to
``MAX_TASKS_PER_CALL`` tasks; every other request is its own ``enqueue`` call. The calls keep the order of
the requests, so FIFO within a priority level holds across a mixed batch. A ``enqueue_many`` call costs
Redis about a fifth of one ``enqueue`` call per task (one script invocation, one variadic RPUSH, one
counter update for the whole group) and carries the shared spec once instead of once per task.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from jobqueue.broker.enqueue import EnqueueRequest
from jobqueue.broker.enqueue_call import (
    EnqueueReply,
    build_enqueue,
    due_times,
    encode_payload,
    parse_enqueue_reply,
    shared_spec,
)
from jobqueue.broker.scripts import ScriptCall
from jobqueue.errors import ValidationError
from jobqueue.keys import QueueKeys, new_task_id, new_task_ids
from jobqueue.models import TaskStatus
from jobqueue.settings import Settings
from jobqueue.tracing import current_trace_headers, merge_headers

# Bounds how long one call keeps Redis busy (about 10 µs of server time per task).
MAX_TASKS_PER_CALL = 500

# A dict hit per task, not an enum lookup; built once (building it per call cost more than the lookups).
_STATUS_OF = {s.value: s for s in TaskStatus}


@dataclass(frozen=True)
class EnqueuePlan:
    """Script calls for a list of requests, and where each request's reply is found.

    ``slots[i]`` = (index of the call, position in that call's reply or -1 for an ``enqueue`` call,
    task id) for request i.
    """

    calls: list[ScriptCall]
    slots: list[tuple[int, int, str]]


def is_plain(request: EnqueueRequest) -> bool:
    """Whether a request can go through ``enqueue_many`` (nothing to check against existing state)."""
    return (
        request.task_id is None and not request.unique and not request.depends_on and not request.pass_result
    )


@functools.lru_cache(maxsize=1024)
def _group_keys(prefix: str, queue: str, priority: str) -> tuple[tuple[str, ...], str]:
    """(the leading KEYS of an enqueue_many call, the queue's task key prefix): the same for every call of
    a queue and priority, so built once rather than per call (one-by-one enqueue builds a group per task)."""
    keys = QueueKeys(prefix, queue)
    # The hand-off's keys (lua/_handoff.lua) follow the queue's own: every key the script touches is in KEYS.
    handoff = (keys.parked, *keys.ready_all, keys.leases, keys.rate, keys.config)
    return (
        keys.ready(priority),
        keys.delayed,
        keys.wake,
        keys.events,
        keys.stats,
        *handoff,
    ), keys.task_prefix


class _Group:
    """A run of plain requests with one queue and spec, becoming one ``enqueue_many`` call."""

    def __init__(self, settings: Settings, queue: str, spec: tuple[str | int, ...]) -> None:
        self.queue = queue
        self.spec = spec
        # spec[3] is the priority's value (see shared_spec).
        self.head, self.task_prefix = _group_keys(settings.key_prefix, queue, str(spec[3]))
        self.slots: list[tuple[int, str]] = []  # (the task's slot in the batch, its id), in call order
        self.task_keys: list[str] = []
        self.per_task: list[str | int] = []

    def add(self, task_id: str, args_json: str, kwargs_json: str, due_ms: int, countdown_ms: int) -> int:
        self.task_keys.append(self.task_prefix + task_id)  # QueueKeys.task, without rebuilding the prefix
        self.per_task += (task_id, args_json, kwargs_json, due_ms, countdown_ms)
        return len(self.task_keys) - 1

    def call(self, settings: Settings) -> ScriptCall:
        return ScriptCall(
            "enqueue_many",
            (*self.head, *self.task_keys),
            (settings.events_max_length, len(self.spec), *self.spec, *self.per_task),
        )


# A plain request after validation: (queue, shared spec, args JSON, kwargs JSON, due ms, countdown ms).
_PlainTask = tuple[str, tuple[str | int, ...], str, str, int, int]


class PreparedEnqueue:
    """Requests validated and encoded (every error already raised), whose script calls are assembled
    lazily by ``calls()``: a client can write call k while it assembles call k+1 (see script_wire).

    After ``calls()`` has been iterated to its end, ``slots`` is as in EnqueuePlan."""

    def __init__(self, settings: Settings, requests: Sequence[EnqueueRequest], max_per_call: int) -> None:
        self.settings = settings
        self.max_per_call = max_per_call
        self.slots: list[tuple[int, int, str]] = []
        # Validation and encoding of every request happen here, before any call exists: one bad request
        # enqueues nothing. Each entry is a ready ``enqueue`` call (task id, call) or a plain task.
        self._items: list[tuple[str, ScriptCall] | _PlainTask] = []
        plain_queues: list[str] = []
        # A batch's requests mostly share one spec: built once per distinct spec, and the same tuple
        # object then makes calls() compare specs by identity.
        specs: dict[tuple[Any, ...], tuple[str | int, ...]] = {}
        for index, request in enumerate(requests):
            try:
                self._add(settings, request, specs, plain_queues)
            except ValidationError as exc:
                # The caller must know which task of the batch is wrong, not only which field.
                raise exc.at_index(index) from exc
        self._plain_ids = new_task_ids(plain_queues)

    def _add(
        self,
        settings: Settings,
        request: EnqueueRequest,
        specs: dict[tuple[Any, ...], tuple[str | int, ...]],
        plain_queues: list[str],
    ) -> None:
        """Validate and encode one request into an item of ``calls()``."""
        if is_plain(request):
            args_json, kwargs_json = encode_payload(settings, request)
            spec_key = (
                request.name,
                request.queue,
                request.priority,
                request.max_retries,
                request.timeout,
                request.soft_timeout,
                request.result_ttl,
                tuple(request.headers.items()) if request.headers else (),
                request.expires_at_ms,
            )
            spec = specs.get(spec_key)
            if spec is None:
                spec = specs[spec_key] = shared_spec(settings, request)
            if request.eta is None and not request.countdown:
                self._items.append((request.queue, spec, args_json, kwargs_json, 0, 0))
            else:
                self._items.append((request.queue, spec, args_json, kwargs_json, *due_times(request)))
            plain_queues.append(request.queue)
        else:
            self._items.append(build_enqueue(settings, request))

    def calls(self) -> Iterator[ScriptCall]:
        """The script calls. Plain requests of one queue and spec share a call of up to max_per_call even
        when other queues' requests come between them (a batch fanned out over many queues would else be
        one call per task): one group is open per ready list (queue and priority), and a request of another
        spec for that list closes it first, so each list receives its tasks in request order. A request
        that is not plain closes every open group and is its own call, in request order. A task's slot is
        filled when its call is yielded."""
        settings, slots = self.settings, self.slots
        slots[:] = [(-1, -1, "")] * len(self._items)
        lanes: dict[tuple[str, str | int], _Group] = {}
        emitted = 0

        def send(group: _Group) -> ScriptCall:
            nonlocal emitted
            for position, (slot, task_id) in enumerate(group.slots):
                slots[slot] = (emitted, position, task_id)
            emitted += 1
            return group.call(settings)

        ids = iter(self._plain_ids)
        for slot, item in enumerate(self._items):
            if len(item) == 2:
                for group in lanes.values():
                    yield send(group)
                lanes.clear()
                task_id, call = item
                slots[slot] = (emitted, -1, task_id)
                emitted += 1
                yield call
                continue
            queue, spec, args_json, kwargs_json, due_ms, countdown_ms = item
            lane = (queue, spec[3])  # spec[3] is the priority (see shared_spec)
            open_group = lanes.get(lane)
            if open_group is not None and (
                (open_group.spec is not spec and open_group.spec != spec)
                or len(open_group.task_keys) >= self.max_per_call
            ):
                yield send(open_group)
                open_group = None
            if open_group is None:
                open_group = lanes[lane] = _Group(settings, queue, spec)
            task_id = next(ids)
            open_group.add(task_id, args_json, kwargs_json, due_ms, countdown_ms)
            open_group.slots.append((slot, task_id))
        for group in lanes.values():
            yield send(group)


def single_plain_call(settings: Settings, request: EnqueueRequest) -> tuple[str, ScriptCall]:
    """(task id, ``enqueue_many`` call) of one plain request: the one-by-one producer's path. The same call
    ``PreparedEnqueue`` makes of a one-request batch, without its grouping and reply bookkeeping (about a
    fifth of the client's CPU of such an enqueue)."""
    args_json, kwargs_json = encode_payload(settings, request)
    spec = shared_spec(settings, request)
    due_ms, countdown_ms = due_times(request)
    head, task_prefix = _group_keys(settings.key_prefix, request.queue, request.priority.value)
    task_id = new_task_id(request.queue)
    return task_id, ScriptCall(
        "enqueue_many",
        (*head, task_prefix + task_id),
        (settings.events_max_length, len(spec), *spec, task_id, args_json, kwargs_json, due_ms, countdown_ms),
    )


def coalesce_calls(
    calls: Sequence[ScriptCall], max_per_call: int = MAX_TASKS_PER_CALL
) -> tuple[list[ScriptCall], list[tuple[int, int]]]:
    """Merge runs of one-task ``enqueue_many`` calls of one queue and spec (made by ``single_plain_call``
    for different callers: see autopipeline) into one call each, as ``PreparedEnqueue`` does for one
    caller's batch: Redis then runs one script, one RPUSH and one counter update for the run instead of
    one each per task. Only consecutive calls are merged, so the order of every ready list holds.

    Returns (the calls to send, for each given call (index of the call carrying it, position of its task
    in that call's reply, or -1 when it is sent as it was))."""
    out: list[ScriptCall] = []
    where: list[tuple[int, int]] = []
    # The open run: its shared keys and shared args (identical in every call of the run), then per task
    # the task key and the task's five values.
    head: tuple[str, ...] = ()
    prefix: tuple[str | int | float, ...] = ()
    task_keys: list[str] = []
    per_task: list[str | int | float] = []

    def close_run() -> None:
        if task_keys:
            out.append(ScriptCall("enqueue_many", (*head, *task_keys), (*prefix, *per_task)))
            task_keys.clear()
            per_task.clear()

    for call in calls:
        shared = 2 + int(call.args[1]) if call.script == "enqueue_many" else 0
        if not shared or len(call.args) != shared + 5:
            close_run()
            where.append((len(out), -1))
            out.append(call)
            continue
        if not (
            task_keys
            and len(task_keys) < max_per_call
            and call.keys[:-1] == head
            and call.args[:shared] == prefix
        ):
            close_run()
            head, prefix = call.keys[:-1], call.args[:shared]
        where.append((len(out), len(task_keys)))
        task_keys.append(call.keys[-1])
        per_task.extend(call.args[shared:])
    close_run()
    return out, where


def spread_replies(replies: Sequence[Any], where: Sequence[tuple[int, int]]) -> list[Any]:
    """The reply of each call given to ``coalesce_calls``: a merged call's reply split back into one-task
    replies (an error reply is every merged call's)."""
    out = []
    for index, position in where:
        reply = replies[index]
        out.append(reply if position < 0 or isinstance(reply, Exception) else [reply[position]])
    return out


def parent_checks(settings: Settings, requests: Sequence[EnqueueRequest]) -> list[tuple[int, str, str]]:
    """(request index, parent id, parent task key) of every parent a batch names, for a check that they
    exist before any task is written: enqueue.lua refuses a task with a missing parent, but by then the
    batch's earlier tasks were written, and a batch is all-or-nothing. Empty for a single request (its
    script alone decides) and for batches without dependencies."""
    if len(requests) < 2:
        return []
    # A parent created earlier in the same batch (a caller-chosen task id) exists by the time its child's
    # script runs: only parents from outside the batch are checked.
    created = {r.task_id for r in requests if r.task_id is not None}
    return [
        (index, parent, QueueKeys(settings.key_prefix, parent.rpartition(".")[0]).task(parent))
        for index, request in enumerate(requests)
        for parent in request.depends_on
        if parent not in created
    ]


def refuse_cross_queue_parents(requests: Sequence[EnqueueRequest]) -> None:
    """On Redis Cluster: ValidationError('depends_on', index) for a request whose parent is in another
    queue. The parent's keys are on another hash slot, which one script call cannot touch (Redis Cluster
    refuses it), so it is refused here with the queues named instead of as a driver error."""
    for index, request in enumerate(requests):
        for parent in request.depends_on:
            parent_queue = parent.rpartition(".")[0]
            if parent_queue != request.queue:
                raise ValidationError(
                    "depends_on",
                    f"on Redis Cluster a task and its parents must share a queue (one hash slot); parent "
                    f"{parent!r} is in queue {parent_queue!r}, the task in {request.queue!r}",
                    index if len(requests) > 1 else None,
                )


def raise_missing_parents(checks: Sequence[tuple[int, str, str]], exists: Sequence[Any]) -> None:
    """ValidationError('depends_on', index) for the first parent whose EXISTS reply was 0."""
    for (index, parent, _), found in zip(checks, exists, strict=True):
        if not int(found):
            raise ValidationError(
                "depends_on", f"unknown parent task {parent} (never created, or expired)", index
            )


def plan_enqueue(
    settings: Settings, requests: Sequence[EnqueueRequest], max_per_call: int = MAX_TASKS_PER_CALL
) -> EnqueuePlan:
    """Validate and encode every request (any error raises before anything is sent) into script calls."""
    prepared = PreparedEnqueue(settings, requests, max_per_call)
    calls = list(prepared.calls())
    return EnqueuePlan(calls, prepared.slots)


def parse_plan_replies(plan: EnqueuePlan | PreparedEnqueue, replies: Sequence[Any]) -> list[EnqueueReply]:
    """One EnqueueReply per request, in request order (ValidationError for a missing parent)."""
    out = []
    status_of = _STATUS_OF
    for call_index, position, task_id in plan.slots:
        reply = replies[call_index]
        if position < 0:
            out.append(parse_enqueue_reply(reply))
        else:
            out.append(EnqueueReply(task_id, status_of[reply[position]], created=True, deduplicated=False))
    return out


def with_trace_context(requests: Sequence[EnqueueRequest]) -> Sequence[EnqueueRequest]:
    """``requests`` carrying the current trace context in their headers (jobqueue.tracing), so each
    attempt's span is a child of the producer's; the same requests when there is no context to carry."""
    context = current_trace_headers()
    if not context:
        return requests
    return [replace(r, headers=merge_headers(r.headers, context)) for r in requests]
