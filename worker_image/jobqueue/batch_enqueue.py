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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.commands import (
    EnqueueReply,
    EnqueueRequest,
    build_enqueue,
    due_times,
    encode_payload,
    parse_enqueue_reply,
    shared_spec,
)
from jobqueue.keys import QueueKeys, new_task_id
from jobqueue.models import TaskStatus
from jobqueue.scripts import ScriptCall
from jobqueue.settings import Settings

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
    return (keys.ready(priority), keys.delayed, keys.wake, keys.events, keys.stats), keys.task_prefix


class _Group:
    """A run of plain requests with one queue and spec, becoming one ``enqueue_many`` call."""

    def __init__(self, settings: Settings, queue: str, spec: tuple[str | int, ...]) -> None:
        self.queue = queue
        self.spec = spec
        # spec[5] is the priority's value (see shared_spec).
        self.head, self.task_prefix = _group_keys(settings.key_prefix, queue, str(spec[5]))
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


def plan_enqueue(settings: Settings, requests: Sequence[EnqueueRequest]) -> EnqueuePlan:
    """Validate and encode every request (any error raises before anything is sent) into script calls."""
    calls: list[ScriptCall] = []
    slots: list[tuple[int, int, str]] = []
    group: _Group | None = None

    def close() -> None:
        nonlocal group
        if group is not None:
            calls.append(group.call(settings))
            group = None

    for request in requests:
        if not is_plain(request):
            close()
            task_id, call = build_enqueue(settings, request)
            slots.append((len(calls), -1, task_id))
            calls.append(call)
            continue
        args_json, kwargs_json = encode_payload(settings, request)
        spec = shared_spec(settings, request)
        if group is None or group.spec != spec or len(group.task_keys) >= MAX_TASKS_PER_CALL:
            close()
            group = _Group(settings, request.queue, spec)
        task_id = new_task_id(request.queue)
        position = group.add(task_id, args_json, kwargs_json, *due_times(request))
        slots.append((len(calls), position, task_id))
    close()
    return EnqueuePlan(calls, slots)


def parse_plan_replies(plan: EnqueuePlan, replies: Sequence[Any]) -> list[EnqueueReply]:
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
