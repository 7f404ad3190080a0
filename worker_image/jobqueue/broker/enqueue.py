"""Pure builders of script calls and parsers of their replies: the broker protocol without any I/O.

The sync ``Client`` and the ``AsyncClient`` both run these, so the two never drift apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeGuard

from jobqueue.broker.scripts import ScriptCall
from jobqueue.errors import ValidationError
from jobqueue.expiry import MAX_DELAY_SECONDS as _MAX_AHEAD
from jobqueue.expiry import expiry_ms
from jobqueue.headers import check_headers, encode_headers
from jobqueue.keys import QueueKeys, keys_for_task, new_task_id, queue_of, validate_queue_name
from jobqueue.models import Priority, TaskStatus, parse_priority
from jobqueue.payloads import check_encoded, check_text
from jobqueue.serialization import check_size, dumps, signature
from jobqueue.settings import Settings

DEFAULT_UNIQUE_TTL = 86_400  # a dedup key outlives any sane pending time, yet never lives forever
MAX_PARENTS = 1000
# One bound for countdown, eta and expires (defined beside expires, jobqueue/expiry.py).
MAX_DELAY_SECONDS = _MAX_AHEAD
PASS_RESULT_MODES = ("", "first", "list")


@dataclass(frozen=True)
class EnqueueRequest:
    """Everything needed to create one task, validated."""

    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str
    priority: Priority
    countdown: float | None = None
    eta: dt.datetime | None = None
    max_retries: int | None = None  # None: the queue's default at failure time
    timeout: float | None = None
    soft_timeout: float | None = None
    result_ttl: int | None = None
    task_id: str | None = None
    unique: bool = False
    unique_key: str | None = None
    unique_ttl: int = DEFAULT_UNIQUE_TTL
    unique_rerun: bool = False  # release the dedup key once the task completes
    depends_on: tuple[str, ...] = ()
    pass_result: str = ""  # set by workflows: '' | 'first' | 'list' (see lua/_workflow.lua)
    # Message headers (jobqueue.headers), validated; the client adds the trace context (jobqueue.tracing).
    headers: Mapping[str, str] = field(default_factory=dict)
    expires_at_ms: int | None = None  # not started by then (unix ms): EXPIRED, never run


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


class EnqueueOptions(TypedDict, total=False):
    """Options of one enqueue, shared by make_request, Client.enqueue and AsyncClient.enqueue."""

    queue: str
    priority: Priority | str
    countdown: float | None
    eta: dt.datetime | None
    max_retries: int | None
    timeout: float | None
    soft_timeout: float | None
    result_ttl: int | None
    unique: bool
    unique_key: str | None
    unique_ttl: int | None
    unique_rerun: bool
    depends_on: Sequence[str] | None
    headers: Mapping[str, str] | None
    expires: float | dt.datetime | None


def make_request(
    name: str,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    *,
    queue: str = "default",
    priority: Priority | str = Priority.MEDIUM,
    countdown: float | None = None,
    eta: dt.datetime | None = None,
    max_retries: int | None = None,
    timeout: float | None = None,
    soft_timeout: float | None = None,
    result_ttl: int | None = None,
    unique: bool = False,
    unique_key: str | None = None,
    unique_ttl: int | None = None,
    unique_rerun: bool = False,
    depends_on: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    expires: float | dt.datetime | None = None,
) -> EnqueueRequest:
    """Validate enqueue options; every problem is a ValidationError naming the field.

    ``unique`` (implied by ``unique_key``) deduplicates on the signature (SHA-256 of name and canonical
    args / kwargs) or on ``unique_key``, for ``unique_ttl`` seconds (default 24 h); ``unique_rerun``
    allows a new task once the earlier one completed. ``depends_on`` lists parent task ids: the task stays
    PENDING until every parent succeeded. ``headers``: string metadata carried with the message
    (jobqueue.headers: bounded, printable ASCII; ValidationError('headers.<name>') otherwise). ``expires``
    (seconds from now, or a datetime; naive = UTC): a task not started by then is never run and ends
    EXPIRED (docs/expiry.md).
    """
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ValidationError("name", "must be a non-empty string of at most 200 characters")
    check_text(name, "name")
    _check_queue(queue)
    if args is None:
        args = []
    # Exact list / tuple / dict first: the ABC isinstance checks cost more than the rest of the validation.
    elif (type(args) is not list and type(args) is not tuple) and (
        isinstance(args, (str, bytes)) or not isinstance(args, Sequence)
    ):
        raise ValidationError("args", "must be a list")
    if kwargs is None:
        kwargs = {}
    elif (type(kwargs) is not dict and not isinstance(kwargs, Mapping)) or (
        kwargs and not all(isinstance(k, str) for k in kwargs)
    ):
        raise ValidationError("kwargs", "must be an object with string keys")
    if countdown is not None and eta is not None:
        raise ValidationError("countdown", "give either countdown or eta, not both")
    if countdown is not None and (not _is_number(countdown) or not 0 <= countdown <= MAX_DELAY_SECONDS):
        raise ValidationError("countdown", f"must be a number of seconds between 0 and {MAX_DELAY_SECONDS}")
    if eta is not None:
        _check_eta(eta)
    expires_at_ms = None if expires is None else expiry_ms(expires, countdown, eta)
    if max_retries is not None and (
        not isinstance(max_retries, int) or isinstance(max_retries, bool) or not 0 <= max_retries <= 1000
    ):
        raise ValidationError("max_retries", "must be an integer between 0 and 1000")
    if timeout is not None and (not _is_number(timeout) or timeout <= 0):
        raise ValidationError("timeout", "must be a number of seconds > 0")
    if soft_timeout is not None:
        if not _is_number(soft_timeout) or soft_timeout <= 0:
            raise ValidationError("soft_timeout", "must be a number of seconds > 0")
        if timeout is not None and soft_timeout >= timeout:
            raise ValidationError("soft_timeout", "must be less than timeout")
    if result_ttl is not None and (not isinstance(result_ttl, int) or result_ttl <= 0):
        raise ValidationError("result_ttl", "must be a whole number of seconds > 0")
    if unique_key is not None and (not isinstance(unique_key, str) or not 0 < len(unique_key) <= 1000):
        raise ValidationError("unique_key", "must be a non-empty string of at most 1000 characters")
    if unique_key is not None:
        check_text(unique_key, "unique_key")
    ttl = DEFAULT_UNIQUE_TTL if unique_ttl is None else unique_ttl
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
        raise ValidationError("unique_ttl", "must be a whole number of seconds > 0")
    # A frozen dataclass's __init__ stores each of its 18 fields through object.__setattr__, which was a
    # fifth of the client's cost of an enqueue; the values are validated above, so they are stored
    # directly. The instance is the same (equal, frozen); tests/unit check every field is set.
    request = object.__new__(EnqueueRequest)
    request.__dict__.update(
        name=name,
        args=list(args),
        kwargs=dict(kwargs),
        queue=queue,
        priority=parse_priority(priority),
        countdown=countdown,
        eta=eta,
        max_retries=max_retries,
        timeout=timeout,
        soft_timeout=soft_timeout,
        result_ttl=result_ttl,
        task_id=None,
        unique=bool(unique) or unique_key is not None,
        unique_key=unique_key,
        unique_ttl=ttl,
        unique_rerun=bool(unique_rerun),
        depends_on=validate_parents(depends_on),
        pass_result="",
        headers={} if headers is None else check_headers(headers),
        expires_at_ms=expires_at_ms,
    )
    return request


# Queue names already validated, so the regex runs once per queue rather than once per enqueue; bounded so
# a producer inventing names cannot grow it without limit.
_VALID_QUEUES: set[str] = set()
_VALID_QUEUES_MAX = 4096


def _check_queue(queue: str) -> None:
    """validate_queue_name, remembered for names that passed."""
    if type(queue) is str and queue in _VALID_QUEUES:
        return
    validate_queue_name(queue)
    if len(_VALID_QUEUES) < _VALID_QUEUES_MAX:
        _VALID_QUEUES.add(queue)


def _check_eta(eta: object) -> None:
    """ValidationError('eta') unless ``eta`` is a datetime at most MAX_DELAY_SECONDS ahead (naive = UTC)."""
    if not isinstance(eta, dt.datetime):
        raise ValidationError("eta", "must be a datetime")
    try:
        at = (eta if eta.tzinfo else eta.replace(tzinfo=dt.UTC)).timestamp()
    except (OverflowError, ValueError, OSError) as exc:
        raise ValidationError("eta", "is out of range") from exc
    if at - time.time() > MAX_DELAY_SECONDS:
        raise ValidationError("eta", f"must be at most {MAX_DELAY_SECONDS} seconds in the future")


def validate_parents(depends_on: Sequence[str] | None) -> tuple[str, ...]:
    """Parent ids as a tuple without duplicates (order kept); ValidationError('depends_on') otherwise."""
    if depends_on is None:
        return ()
    if isinstance(depends_on, (str, bytes)) or not isinstance(depends_on, Sequence):
        raise ValidationError("depends_on", "must be a list of task ids")
    if len(depends_on) > MAX_PARENTS:
        raise ValidationError("depends_on", f"at most {MAX_PARENTS} parents")
    for parent in depends_on:
        try:
            queue_of(parent)
        except ValidationError as exc:
            raise ValidationError("depends_on", exc.message) from exc
    return tuple(dict.fromkeys(depends_on))


def unique_digest(request: EnqueueRequest) -> str:
    """The dedup signature: SHA-256 of the explicit unique_key, else of name + canonical args / kwargs."""
    if request.unique_key is not None:
        return hashlib.sha256(b"key:" + request.unique_key.encode()).hexdigest()
    return signature(request.name, request.args, request.kwargs)


def _is_number(value: object) -> TypeGuard[int | float]:
    # isnan only on floats: math.isnan(10**400) raises OverflowError (a huge int is a number, refused
    # later by its range check).
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )


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


def build_cancel(
    settings: Settings, task_id: str, priority: Priority, reason: str, force: bool
) -> ScriptCall:
    """The cancel script call for a task whose priority is known (its ready list is needed)."""
    keys = QueueKeys(settings.key_prefix, task_id.rpartition(".")[0])
    return ScriptCall(
        "cancel",
        (
            keys.task(task_id),
            keys.ready(priority),
            keys.delayed,
            keys.events,
            keys.stats,
            keys.children(task_id),
        ),
        (
            task_id,
            reason,
            "force" if force else "graceful",
            settings.events_max_length,
            keys.done_channel(task_id),
            keys.cancel_channel,
            settings.result_ttl_seconds,
        ),
    )


# Per queue, the recover script keeps leases-recovered counts for this many workers, most recent first.
RECOVERY_WORKERS_KEPT = 1000


def build_recover(settings: Settings, queue: str, worker_id: str = "", limit: int = 1000) -> ScriptCall:
    """The recover script call: expired leases of a queue, or the leases of a worker known dead (read
    from its held set, up to ``limit`` per call). Reply: [requeued, dead_lettered, left, cancelled],
    left = ids of that worker still to look at (call again while > 0). Every recovered lease is counted
    in the queue's recoveries hash, per worker, by the script itself."""
    keys = QueueKeys(settings.key_prefix, queue)
    held = (keys.held(worker_id),) if worker_id else ()
    return ScriptCall(
        "recover",
        (
            keys.leases,
            *keys.ready_all,
            keys.dead,
            keys.events,
            keys.stats,
            keys.wake,
            keys.config,
            keys.recoveries,
            *held,
        ),
        (
            keys.task_prefix,
            limit,
            settings.max_lost_leases,
            settings.events_max_length,
            worker_id,
            keys.done_channel_prefix,
            settings.retry_history_max,
            settings.result_ttl_seconds,
            RECOVERY_WORKERS_KEPT,
        ),
    )


def build_replay(settings: Settings, task_id: str, priority: Priority, reset_retries: bool) -> ScriptCall:
    """The replay script call for a dead-lettered task."""
    keys = QueueKeys(settings.key_prefix, task_id.rpartition(".")[0])
    return ScriptCall(
        "replay",
        (keys.task(task_id), keys.dead, keys.ready(priority), keys.wake, keys.events),
        (task_id, "1" if reset_retries else "0", settings.events_max_length),
    )


def build_purge_dead(settings: Settings, queue: str, batch: int = 500) -> ScriptCall:
    """One batch of the dead letter purge."""
    keys = QueueKeys(settings.key_prefix, queue)
    return ScriptCall(
        "purge_dead", (keys.dead, keys.events), (keys.task_prefix, batch, settings.events_max_length)
    )
