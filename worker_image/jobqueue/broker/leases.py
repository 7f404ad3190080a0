"""The lease protocol between workers and the broker, pure: the values a lease carries (a leased ``Job``,
an attempt's ``Outcome``), the calls that take a lease (fetch, and the hand-off record enqueue pushes to a
parked worker), keep it (heartbeat) and hand it back (release), the parsing of their replies, and the log
of a fenced call the broker refused. One typed wrapper per script; the worker runs these calls, it never
builds one itself. Recording an outcome (ack, fail) is ``broker/completion_calls.py``.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from jobqueue.broker.completion import CompletionCode
from jobqueue.broker.scripts import ScriptCall
from jobqueue.keys import QueueKeys
from jobqueue.models import Priority
from jobqueue.settings import Settings

log = logging.getLogger(__name__)

FETCH_FIELDS_PER_TASK = 15


@dataclass(frozen=True)
class Job:
    """One leased attempt, as handed to an executor. ``token`` is the fencing token of the lease."""

    id: str
    token: int
    name: str
    args_json: str
    kwargs_json: str
    queue: str
    priority: str
    timeout: float | None
    soft_timeout: float | None
    max_retries: int
    retries: int
    result_ttl: int | None
    # The message headers as written at enqueue (JSON, '' = none; jobqueue.headers): kept encoded, since
    # only tracing reads them, and decodes them defensively.
    headers_json: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (sent to child processes as JSON, never pickled)."""
        # A shallow copy of the fields: they are all flat JSON values, and dataclasses.asdict's
        # recursive deep copy was a visible share of the process pool's per-task cost.
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        """Inverse of to_json."""
        return cls(**data)

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Job:
        """A Job that takes ``fields`` (every field, already typed, e.g. from to_json) as its own, without
        the frozen dataclass __init__ (one object.__setattr__ per field): the hot paths build one per
        task. The caller must not keep using ``fields``."""
        job = _new(cls)
        job.__dict__.update(fields)
        return job


class OutcomeKind(enum.StrEnum):
    """How an attempt ended."""

    SUCCESS = "success"
    ERROR = "error"  # the task raised
    TIMEOUT = "timeout"  # killed at its hard limit
    CANCELLED = "cancelled"  # stopped on a cancel request
    CRASHED = "crashed"  # its process died without reporting
    REJECTED = "rejected"  # can never run: unknown task name or malformed message


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt, reported by an executor."""

    task_id: str
    token: int
    kind: OutcomeKind
    result_json: str = "null"
    error: str = ""
    traceback: str = ""
    retryable: bool = False
    reject_reason: str = ""
    # Set by ``raise Retry(...)``: the exact delay asked for (None: the retry policy's), and False when
    # the retry must not count against max_retries.
    retry_in_ms: int | None = None
    retry_counted: bool = True

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``kind`` is a StrEnum, which JSON writes as its value)."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        """Inverse of to_json (takes ``data`` over; the process pool's parent decodes one per task, so
        without the frozen dataclass __init__)."""
        data["kind"] = OutcomeKind(data["kind"])
        if data.keys() != _OUTCOME_FIELDS:
            return cls(**data)  # a wrong or missing field raises as the constructor does
        outcome = _new(cls)
        outcome.__dict__.update(data)
        return outcome

    @classmethod
    def succeeded(cls, task_id: str, token: int, result_json: str) -> Outcome:
        """A success, built without the frozen dataclass __init__ (one object.__setattr__ per field): one
        per task on the hot path. Equal to ``Outcome(task_id, token, OutcomeKind.SUCCESS, result_json)``."""
        outcome = _new(cls)
        outcome.__dict__.update(_SUCCESS_DEFAULTS, task_id=task_id, token=token, result_json=result_json)
        return outcome


_OUTCOME_FIELDS = {f.name for f in fields(Outcome)}
# Every field of a success but its id, token and result (see Outcome.succeeded).
_SUCCESS_DEFAULTS: dict[str, Any] = {
    "kind": OutcomeKind.SUCCESS,
    "error": "",
    "traceback": "",
    "retryable": False,
    "reject_reason": "",
    "retry_in_ms": None,
    "retry_counted": True,
}
_new = object.__new__


@dataclass(frozen=True)
class FetchReply:
    """What one fetch call returned."""

    jobs: list[Job]
    wait_ms: int  # -1: nothing to wait for; -2: paused; -3: max in-flight; > 0: rate limited
    next_due_ms: int  # ms until the earliest delayed task, -1 if none
    queue_wait_ms: list[int] = field(default_factory=list)  # per job: ms since it became ready, -1 unknown


def parse_fetch(queue: str, reply: Sequence[Any], default_timeout: float | None = None) -> FetchReply:
    """Decode the flat reply of fetch.lua; a task without a hard time limit gets ``default_timeout``."""
    count = int(reply[2])
    jobs = []
    waits = []
    for base in range(3, 3 + count * FETCH_FIELDS_PER_TASK, FETCH_FIELDS_PER_TASK):
        job, wait = _leased_job(queue, reply[base : base + FETCH_FIELDS_PER_TASK], default_timeout)
        jobs.append(job)
        waits.append(wait)
    return FetchReply(jobs, int(reply[0]), int(reply[1]), waits)


def _leased_job(queue: str, values: Sequence[Any], default_timeout: float | None) -> tuple[Job, int]:
    """One task's FETCH_FIELDS_PER_TASK values (lua/_lease.lua) as a Job, and its queue wait in ms (-1:
    unknown). A task enqueued without a timeout runs under ``default_timeout`` (None: no limit)."""
    (task_id, token, name, args, kwargs, priority, timeout, soft_timeout, max_retries, retries, _, _,
     result_ttl, queue_wait, headers_json) = values[:FETCH_FIELDS_PER_TASK]  # fmt: skip
    # Built without the frozen dataclass __init__ (one object.__setattr__ per field): one Job per leased
    # task, and that init was the largest share of decoding a fetched batch. Same fields, same types,
    # still frozen.
    job = _new(Job)
    job.__dict__.update(
        id=task_id,
        token=int(token),
        name=name,
        args_json=args,
        kwargs_json=kwargs,
        queue=queue,
        priority=priority or "medium",
        timeout=float(timeout) if timeout else default_timeout,
        soft_timeout=float(soft_timeout) if soft_timeout else None,
        max_retries=int(max_retries or 0),
        retries=int(retries or 0),
        result_ttl=int(result_ttl) if result_ttl else None,
        headers_json=headers_json,
    )
    return job, int(queue_wait) if queue_wait != "" else -1


def build_fetch(
    settings: Settings, queue: str, max_tasks: int, worker_id: str, park_ms: int | None = None
) -> ScriptCall:
    """The fetch call for one queue (max_tasks = 0 only promotes due delayed tasks; the scheduler uses
    broker.promotion.build_promote for that).

    ``park_ms`` (workers only): first leave the parked hash and take what enqueue handed to this worker's
    inbox; then, if the call finds nothing to run and nothing to wait for, park for that long with
    capacity ``max_tasks`` (0 = only leave). None = no parking at all (the scheduler's promote call)."""
    k = QueueKeys(settings.key_prefix, queue)
    return ScriptCall(
        "fetch",
        (
            *k.ready_all, k.delayed, k.leases, k.wake, k.config, k.events, k.stats, k.rate, k.parked,
            k.inbox(worker_id), k.held(worker_id), *k.priority_rates,
        ),
        (
            max_tasks,
            worker_id,
            int(settings.lease_seconds * 1000),
            k.task_prefix,
            settings.events_max_length,
            settings.promote_batch,
            "" if park_ms is None else park_ms,
            k.done_channel_prefix,
        ),
    )  # fmt: skip


def parse_handoff(
    queue: str, record_json: str, default_timeout: float | None = None
) -> tuple[FetchReply, int]:
    """Decode one record enqueue pushed to a parked worker's inbox (lua/_handoff.lua): the task, leased
    exactly as a fetch reply would carry it, and the capacity the worker has left parked (0 = it is no
    longer parked and must fetch to park again)."""
    record = json.loads(record_json)
    # Decoded straight into its one Job (no fetch-shaped list, no dataclass __init__): this runs on the
    # task's path to its start, in a thread just woken from idle, where every step costs several times
    # its warm price.
    job, wait = _leased_job(queue, record, default_timeout)
    reply = _new(FetchReply)
    reply.__dict__.update(jobs=[job], wait_ms=-1, next_due_ms=-1, queue_wait_ms=[wait])
    return reply, int(record[FETCH_FIELDS_PER_TASK])


_STALE_REASONS = {
    CompletionCode.LEASE_LOST: "its lease was lost (recovered or finished elsewhere)",
    CompletionCode.FENCED: "a newer attempt holds the task",
    CompletionCode.UNKNOWN_TASK: "the task no longer exists",
}


def log_stale_completion(job: Job, what: str, code: CompletionCode) -> None:
    """Log a refused ack / fail / release (nothing else to do: the task is another attempt's, or gone),
    with the structured fields task_id, queue, attempt and the code's name as ``stale``."""
    if not code.stale:
        return
    log.warning(
        "task %s attempt %d: %s not recorded: %s",
        job.id,
        job.token,
        what,
        _STALE_REASONS[code],
        extra={"task_id": job.id, "queue": job.queue, "attempt": job.token, "stale": code.name.lower()},
    )


def build_release(settings: Settings, job: Job, *, worker_id: str) -> ScriptCall:
    """Hand an unfinished lease of ``worker_id`` back to the front of its queue; the reply is a list of
    one CompletionCode: RELEASED, FINISHED when the task's cancel was requested (it ends CANCELLED instead
    of running again), or why not."""
    k = QueueKeys(settings.key_prefix, job.queue)
    return ScriptCall(
        "release",
        (
            k.task(job.id), k.leases, k.ready(Priority(job.priority)), k.wake, k.events, k.held(worker_id),
            k.stats, k.children(job.id),
        ),
        (job.id, job.token, settings.events_max_length, k.done_channel(job.id), settings.result_ttl_seconds),
    )  # fmt: skip


def build_heartbeat(settings: Settings, queue: str, worker_id: str, jobs: Sequence[Job]) -> ScriptCall:
    """Renew every lease this worker holds in one queue."""
    k = QueueKeys(settings.key_prefix, queue)
    pairs: list[str | int] = []
    for job in jobs:
        pairs += [job.id, job.token]
    return ScriptCall(
        "heartbeat",
        (k.leases, k.held(worker_id), *(k.task(job.id) for job in jobs)),
        (worker_id, int(settings.lease_seconds * 1000), *pairs),
    )


def parse_heartbeat(reply: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """(lost task ids, {task id: cancel mode}) from a heartbeat reply."""
    split = list(reply).index("")
    lost = list(reply[:split])
    rest = list(reply[split + 1 :])
    return lost, dict(zip(rest[0::2], rest[1::2], strict=True))
