"""The completion script calls (``lua/ack.lua``, ``lua/fail.lua``), pure: how the outcomes a worker
reports become fenced script calls, each outcome first made storable, successes of a queue batched into one
ack call, every other outcome its own fail call with its retry decision (backoff, or the queue's default).

Apart from the lease protocol (``broker/leases.py``: fetch, heartbeat, release and the Job / Outcome
values) because this is the acker's side of it, the only place retry policies and storage limits meet the
broker; the replies are read by ``broker/completion.py``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from jobqueue.broker.completion import CompletionCode
from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.broker.scripts import ScriptCall
from jobqueue.keys import QueueKeys
from jobqueue.models import DeadLetterReason, TaskStatus
from jobqueue.retry import QueueDefaultRetry, RetryPolicy
from jobqueue.settings import Settings
from jobqueue.storable import UNSTORABLE, storable_error, storable_result

log = logging.getLogger(__name__)


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
