"""The enqueue script call (``lua/enqueue.lua``), pure: how a validated ``EnqueueRequest`` becomes the task
hash's fields and one script call, and how the script's reply is read.

Apart from the request and its validation (``broker/enqueue.py``) because this is the wire format shared
with the batch path: ``broker/batch_enqueue.py`` and ``broker/workflows.py`` encode their tasks with the same
functions, so one task looks the same in Redis however it was enqueued. The sync ``Client`` and the
``AsyncClient`` both run these, so the two never drift apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.broker.enqueue import EnqueueRequest
from jobqueue.broker.scripts import ScriptCall
from jobqueue.errors import ValidationError
from jobqueue.headers import encode_headers
from jobqueue.keys import QueueKeys, keys_for_task, new_task_id
from jobqueue.models import TaskStatus
from jobqueue.payloads import check_encoded
from jobqueue.serialization import check_size, dumps, signature
from jobqueue.settings import Settings

PASS_RESULT_MODES = ("", "first", "list")


@dataclass(frozen=True)
class EnqueueReply:
    """What enqueue did: ``id`` is the task the caller should track (the existing one when deduplicated)."""

    id: str
    status: TaskStatus
    created: bool
    deduplicated: bool
    # The id this enqueue was given; when deduplicated it differs from ``id`` and names the folded record
    # (GET /api/v1/tasks/{enqueue_id}/duplicate).
    enqueue_id: str | None = None


def unique_digest(request: EnqueueRequest) -> str:
    """The dedup signature: SHA-256 of the explicit unique_key, else of name + canonical args / kwargs."""
    if request.unique_key is not None:
        return hashlib.sha256(b"key:" + request.unique_key.encode()).hexdigest()
    return signature(request.name, request.args, request.kwargs)


def default_soft_timeout(timeout: float | None, soft_timeout: float | None) -> float | None:
    """The soft limit defaults to 80% of the hard one."""
    if soft_timeout is not None or timeout is None:
        return soft_timeout
    return timeout * 0.8


def encode_payload(settings: Settings, request: EnqueueRequest) -> tuple[str, str]:
    """(args JSON, kwargs JSON) of a request; ValidationError naming the path of a part that is not
    storable (jobqueue.payloads), PayloadTooLarge over the configured limit."""
    args_json = dumps(request.args, "args")
    check_encoded(request.args, args_json, "args")
    # Most tasks take no keyword arguments: their JSON is known without running the encoder.
    kwargs = request.kwargs
    if type(kwargs) is dict and not kwargs:
        kwargs_json = "{}"
    else:
        kwargs_json = dumps(kwargs, "kwargs")
        check_encoded(kwargs, kwargs_json, "kwargs")
    check_size(len(args_json) + len(kwargs_json) + len(request.name), settings.max_payload_bytes)
    return args_json, kwargs_json


def due_times(request: EnqueueRequest) -> tuple[int, int]:
    """(due time in unix ms or 0, countdown in ms or 0): the script turns a countdown into a due time
    on the Redis clock."""
    due_ms = 0
    if request.eta is not None:
        eta = request.eta if request.eta.tzinfo else request.eta.replace(tzinfo=dt.UTC)
        due_ms = int(eta.timestamp() * 1000)
    return due_ms, round((request.countdown or 0) * 1000)


def shared_spec(settings: Settings, request: EnqueueRequest) -> tuple[str | int, ...]:
    """The task hash's spec fields other than args and kwargs, as field, value pairs. Not the queue: it is
    the task id's prefix (keys.queue_of), and readers take it from there."""
    spec: tuple[str | int, ...] = (
        "name",
        request.name,
        "priority",
        request.priority.value,
        "result_ttl",
        request.result_ttl or settings.result_ttl_seconds,
    )
    # Absent (empty before): the task follows its queue's retry default, resolved by fail.lua when it
    # fails. Not writing the default saves Redis a field in the task hash and in the event.
    if request.max_retries is not None:
        spec += ("max_retries", request.max_retries)
    if request.timeout is not None:
        spec += ("timeout", repr(float(request.timeout)))
    soft = default_soft_timeout(request.timeout, request.soft_timeout)
    if soft is not None:
        spec += ("soft_timeout", repr(float(soft)))
    if request.headers:
        spec += ("headers", encode_headers(request.headers))
    if request.expires_at_ms is not None:
        spec += ("expires_at", request.expires_at_ms)
    return spec


def build_enqueue(settings: Settings, request: EnqueueRequest) -> tuple[str, ScriptCall]:
    """The task id and the enqueue script call for one validated request."""
    task_id = request.task_id or new_task_id(request.queue)
    keys = QueueKeys(settings.key_prefix, request.queue)
    args_json, kwargs_json = encode_payload(settings, request)
    due_ms, countdown_ms = due_times(request)
    fields: list[str | int | float] = ["args", args_json, "kwargs", kwargs_json]
    fields += shared_spec(settings, request)
    if request.pass_result not in PASS_RESULT_MODES:
        raise ValidationError("pass_result", f"must be one of {PASS_RESULT_MODES}")
    if task_id in request.depends_on:
        raise ValidationError("depends_on", f"task {task_id} cannot depend on itself")
    parents = list(request.depends_on)
    if parents:
        fields += ["parents", dumps(parents, "depends_on")]
    unique_keys = (keys.unique(unique_digest(request)), keys.folded(task_id)) if request.unique else ()
    parent_keys = tuple(keys_for_task(settings.key_prefix, p).task(p) for p in parents)
    parent_lists = tuple(keys_for_task(settings.key_prefix, p).children(p) for p in parents)
    call = ScriptCall(
        "enqueue",
        (
            keys.task(task_id),
            keys.ready(request.priority),
            keys.delayed,
            keys.wake,
            keys.events,
            keys.stats,
            # the hand-off's keys (lua/_handoff.lua)
            keys.parked,
            *keys.ready_all,
            keys.leases,
            keys.rate,
            keys.config,
            *unique_keys,
            keys.children(task_id),
            *parent_keys,
            *parent_lists,
        ),
        (
            task_id,
            due_ms,
            countdown_ms,
            settings.events_max_length,
            request.unique_ttl if request.unique else 0,
            "1" if request.unique_rerun else "0",
            keys.task_prefix,
            keys.done_channel(task_id),
            request.pass_result,
            len(parents),
            *parents,
            *fields,
        ),
    )
    return task_id, call


def parse_enqueue_reply(reply: Sequence[Any]) -> EnqueueReply:
    """Decode enqueue.lua's reply; ValidationError('depends_on') when a parent does not exist."""
    code, status, task_id = int(reply[0]), str(reply[1]), str(reply[2])
    if code == -1:
        raise ValidationError("depends_on", f"unknown parent task {task_id} (never created, or expired)")
    enqueue_id = str(reply[3]) if code == 2 and len(reply) > 3 else task_id
    return EnqueueReply(
        task_id, TaskStatus(status), created=code == 1, deduplicated=code == 2, enqueue_id=enqueue_id
    )
