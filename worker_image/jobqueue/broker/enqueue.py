"""The enqueue request: every option of one enqueue, validated, as the frozen ``EnqueueRequest`` the
builders take (``make_request``; ``EnqueueOptions`` types the same options for the clients' signatures).

Every entry point (``Client``, ``AsyncClient``, ``App``, the REST API, the CLI, schedules, workflows)
validates here, so a bad option is refused the same way wherever it comes from, as a ValidationError naming
the field. Pure; how a request becomes a script call is ``broker/enqueue_call.py``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeGuard

from jobqueue.errors import ValidationError
from jobqueue.expiry import MAX_DELAY_SECONDS as _MAX_AHEAD
from jobqueue.expiry import expiry_ms
from jobqueue.headers import check_headers
from jobqueue.keys import queue_of, validate_queue_name
from jobqueue.models import Priority, parse_priority
from jobqueue.payloads import check_text

DEFAULT_UNIQUE_TTL = 86_400  # a dedup key outlives any sane pending time, yet never lives forever
MAX_PARENTS = 1000
# One bound for countdown, eta and expires (defined beside expires, jobqueue/expiry.py).
MAX_DELAY_SECONDS = _MAX_AHEAD


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


def _is_number(value: object) -> TypeGuard[int | float]:
    # isnan only on floats: math.isnan(10**400) raises OverflowError (a huge int is a number, refused
    # later by its range check).
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and math.isnan(value))
    )
