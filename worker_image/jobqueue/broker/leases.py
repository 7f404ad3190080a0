"""The lease protocol between workers and the broker, pure: the fetch, ack, fail, release and heartbeat
script calls (one typed wrapper per script), the parsing of their replies, and the values they carry (a
leased ``Job``, an attempt's ``Outcome``). The worker runs these calls; it never builds one itself."""

from __future__ import annotations

import enum
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from jobqueue.broker.completion import CompletionCode
from jobqueue.broker.scripts import ScriptCall
from jobqueue.keys import QueueKeys
from jobqueue.models import DeadLetterReason, Priority, TaskStatus
from jobqueue.retry import QueueDefaultRetry, RetryPolicy
from jobqueue.settings import Settings
from jobqueue.storable import UNSTORABLE, storable_error, storable_result

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


def storable_outcome(settings: Settings, outcome: Outcome) -> Outcome:
    """``outcome`` with a result and error text every store accepts (see worker/storable.py). Never
    raises: the acker thread that calls it must survive any output a task produces."""
    try:
        if outcome.kind == OutcomeKind.SUCCESS:
            result_json, too_large = storable_result(settings, outcome.result_json)
            if too_large:
                return Outcome(outcome.task_id, outcome.token, OutcomeKind.ERROR, error=too_large)
            return (
                outcome if result_json is outcome.result_json else replace(outcome, result_json=result_json)
            )
        error = storable_error(outcome.error, settings.max_error_chars)
        traceback = storable_error(outcome.traceback, settings.max_traceback_chars)
        if error is outcome.error and traceback is outcome.traceback:
            return outcome
        return replace(outcome, error=error, traceback=traceback)
    except Exception:
        log.exception("task %s: its outcome could not be made storable", outcome.task_id)
        return Outcome(outcome.task_id, outcome.token, OutcomeKind.ERROR, error=UNSTORABLE)


def build_completion(
    settings: Settings,
    job: Job,
    outcome: Outcome,
    retry: RetryPolicy | QueueDefaultRetry | None,
    rng: random.Random | None = None,
    *,
    worker_id: str,
) -> ScriptCall:
    """The one fenced script call that records an attempt's outcome; its reply is a list of one
    CompletionCode (``broker.completion.parse_completion``).

    ``worker_id`` is the worker that holds the lease (its held set loses the id). ``retry`` is the
    task's own policy, QUEUE_DEFAULT_RETRY when it has none (fail.lua then computes the backoff from the
    queue's defaults, with a jitter draw made here), or None when the worker does not know the task
    (then no retry).
    """
    return _build_completion(
        settings, job, storable_outcome(settings, outcome), retry, rng, worker_id=worker_id
    )


def _build_completion(
    settings: Settings,
    job: Job,
    outcome: Outcome,
    retry: RetryPolicy | QueueDefaultRetry | None,
    rng: random.Random | None,
    *,
    worker_id: str,
) -> ScriptCall:
    """build_completion of an outcome already made storable."""
    if outcome.kind == OutcomeKind.SUCCESS:
        return _build_ack(settings, [(job, outcome)], worker_id=worker_id)
    k = QueueKeys(settings.key_prefix, job.queue)
    final = {
        OutcomeKind.TIMEOUT: TaskStatus.TIMEOUT,
        OutcomeKind.CANCELLED: TaskStatus.CANCELLED,
    }.get(outcome.kind, TaskStatus.FAILED)
    # A task's own ``raise Retry(...)`` is retried even where the worker has no policy for it.
    requested = outcome.retry_in_ms is not None or not outcome.retry_counted
    may_retry = (
        outcome.retryable and (retry is not None or requested) and outcome.kind != OutcomeKind.REJECTED
    )
    backoff_ms: int | str = 0
    if may_retry and outcome.retry_in_ms is not None:
        backoff_ms = outcome.retry_in_ms
    elif may_retry and isinstance(retry, RetryPolicy):
        backoff_ms = int(retry.delay(job.retries + 1, rng) * 1000)
    elif may_retry:
        backoff_ms = ""  # the queue's default, computed inside the script
    reason = outcome.reject_reason or DeadLetterReason.NOT_RETRYABLE.value
    return ScriptCall(
        "fail",
        (
            k.task(job.id),
            k.leases,
            k.delayed,
            k.dead,
            k.events,
            k.stats,
            k.wake,
            k.config,
            k.held(worker_id),
            k.children(job.id),
        ),
        (
            job.id,
            job.token,
            outcome.error,
            outcome.traceback,
            "1" if may_retry else "0",
            backoff_ms,
            final.value,
            reason,
            settings.events_max_length,
            k.done_channel(job.id),
            settings.retry_history_max,
            (rng or random).random(),
            repr(settings.backoff_scale),
            settings.default_max_retries,
            ("e" if outcome.retry_in_ms is not None else "") + ("" if outcome.retry_counted else "f"),
            job.result_ttl or settings.result_ttl_seconds,
        ),
    )


def build_ack(settings: Settings, done: Sequence[tuple[Job, Outcome]], *, worker_id: str) -> ScriptCall:
    """One fenced ack call for successes of one queue leased by ``worker_id`` (the caller groups by
    queue). The reply is a list of one CompletionCode per task, in order."""
    return _build_ack(
        settings, [(job, storable_outcome(settings, outcome)) for job, outcome in done], worker_id=worker_id
    )


def _build_ack(settings: Settings, done: Sequence[tuple[Job, Outcome]], *, worker_id: str) -> ScriptCall:
    """build_ack of outcomes already made storable."""
    k = QueueKeys(settings.key_prefix, done[0][0].queue)
    args: list[str | int] = [settings.events_max_length, settings.max_event_result_bytes]
    for job, outcome in done:
        args += (
            job.id,
            job.token,
            outcome.result_json,
            job.result_ttl or settings.result_ttl_seconds,
            k.done_channel(job.id),
        )
    return ScriptCall(
        "ack",
        (
            k.leases, k.events, k.stats, k.wake, k.config, k.held(worker_id),
            *(k.task(job.id) for job, _ in done),
            *(k.children(job.id) for job, _ in done),
            # Declared for the children a success releases (their keys come from data: _workflow.lua):
            # a child in this queue is queued on one of these, so on Redis Cluster, where a workflow stays
            # in one queue, every key the script touches is in KEYS.
            *k.ready_all, k.delayed,
        ),
        tuple(args),
    )  # fmt: skip


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


@dataclass(frozen=True)
class CompletionPlan:
    """Script calls recording a batch of outcomes, and where each outcome's reply is found.

    ``slots[i]`` = (index of the call, position in that call's list reply)."""

    calls: list[ScriptCall]
    slots: list[tuple[int, int]]

    def results(self, replies: Sequence[Any]) -> list[CompletionCode]:
        """The CompletionCode of each outcome, in order."""
        return [CompletionCode(int(replies[c][p])) for c, p in self.slots]


def plan_completions(
    settings: Settings,
    batch: Sequence[tuple[Job, Outcome]],
    policy_of: Callable[[Job], RetryPolicy | QueueDefaultRetry | None],
    rng: random.Random | None = None,
    max_per_call: int = 500,
    *,
    worker_id: str,
) -> CompletionPlan:
    """Successes grouped into one ack call per queue (up to ``max_per_call`` each); every other outcome
    is its own fenced fail call. Each task's transition is still atomic and fenced on its own token.
    ``worker_id`` holds every lease of the batch."""
    calls: list[ScriptCall] = []
    slots: list[tuple[int, int]] = [(-1, -1)] * len(batch)
    successes: dict[str, list[int]] = {}
    # Each outcome is made storable once, before it is routed: a result over the size limit is no longer
    # a success.
    batch = [(job, storable_outcome(settings, outcome)) for job, outcome in batch]
    for i, (job, outcome) in enumerate(batch):
        if outcome.kind == OutcomeKind.SUCCESS:
            successes.setdefault(job.queue, []).append(i)
        else:
            slots[i] = (len(calls), 0)
            calls.append(_build_completion(settings, job, outcome, policy_of(job), rng, worker_id=worker_id))
    for indexes in successes.values():
        for start in range(0, len(indexes), max_per_call):
            chunk = indexes[start : start + max_per_call]
            for position, i in enumerate(chunk):
                slots[i] = (len(calls), position)
            calls.append(_build_ack(settings, [batch[i] for i in chunk], worker_id=worker_id))
    return CompletionPlan(calls, slots)


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
