"""Runs one job's function and reports an Outcome. Shared by every pool kind."""

from __future__ import annotations

import asyncio
import inspect
import json
import traceback as tb
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.context import TaskContext, reset_current, set_current
from jobqueue.errors import NotSerializable, Retry, SoftTimeout, TaskCancelled
from jobqueue.hooks import Hooks
from jobqueue.models import DeadLetterReason
from jobqueue.serialization import dumps
from jobqueue.tracing import process_span, record_outcome
from jobqueue.worker.progress import LazyReporter, ProgressReporter, ProgressSink

TaskLookup = Mapping[str, Any]  # name -> TaskDefinition (kept loose to avoid an import cycle with app)


def describe(exc: BaseException) -> str:
    """'ExceptionType: message', the error text stored on the task. A user's exception whose __str__
    raises still gets one: unguarded, that second exception escaped the pool's handler of the first (the
    process pool's child died, the asyncio pool lost the task until its lease expired)."""
    try:
        message = str(exc)
    except Exception as failed:
        message = f"<str() failed: {type(failed).__name__}>"
    return f"{type(exc).__name__}: {message}"


def decode_arguments(job: Job) -> tuple[list[Any], dict[str, Any]]:
    """Args and kwargs of a job; ValueError when the message is not the JSON jobqueue writes."""
    args = json.loads(job.args_json) if job.args_json else []
    # Most tasks have no keyword arguments, which the client stores as "{}": no parser call for them.
    kwargs = json.loads(job.kwargs_json) if job.kwargs_json and job.kwargs_json != "{}" else {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise ValueError("args must be a JSON array and kwargs a JSON object")
    return args, kwargs


def reject(job: Job, reason: DeadLetterReason, error: str) -> Outcome:
    """An outcome for a message that can never run: dead-lettered at once, never retried."""
    return Outcome(job.id, job.token, OutcomeKind.REJECTED, error=error, reject_reason=reason.value)


def run_job(
    registry: TaskLookup,
    job: Job,
    is_cancelled: Callable[[], bool],
    hooks: Hooks | None = None,
    progress: ProgressSink | None = None,
) -> Outcome:
    """Run a job to completion in the calling thread (coroutine functions get their own event loop), with
    the app's before_task / on_failure / after_task hooks around it (a message that can never run gets
    none: there is no task to speak of), in the attempt's tracing span (jobqueue.tracing). Progress the
    task reported is flushed before this returns, so it is stored before the outcome."""
    with process_span(
        job.headers_json, task_id=job.id, name=job.name, queue=job.queue, attempt=job.token
    ) as span:
        outcome, raised = _attempt(registry, job, is_cancelled, hooks, progress)
        record_outcome(span, outcome.kind.value, outcome.error, raised)
    return outcome


def prepare_call(registry: TaskLookup, job: Job) -> tuple[Any, list[Any], dict[str, Any]] | Outcome:
    """The job's task definition and decoded arguments, or the rejection of a job that can never run (no
    such task, a malformed message): dead-lettered at once, not retried. Every pool starts with it."""
    definition = registry.get(job.name)
    if definition is None:
        unknown = f"UnknownTask: no task named {job.name!r} is registered"
        return reject(job, DeadLetterReason.UNKNOWN_TASK, unknown)
    try:
        args, kwargs = decode_arguments(job)
    except ValueError as exc:
        return reject(job, DeadLetterReason.MALFORMED, f"MalformedMessage: {exc}")
    return definition, args, kwargs


def _attempt(
    registry: TaskLookup,
    job: Job,
    is_cancelled: Callable[[], bool],
    hooks: Hooks | None,
    progress: ProgressSink | None,
) -> tuple[Outcome, BaseException | None]:
    """run_job's outcome, and the exception the task raised (None when it returned or never ran)."""
    prepared = prepare_call(registry, job)
    if isinstance(prepared, Outcome):
        return prepared, None
    definition, args, kwargs = prepared
    reporter = progress.reporter(job) if progress is not None else None
    ctx = make_context(job, is_cancelled, reporter)
    token = set_current(ctx)
    try:
        if hooks is not None:
            hooks.before_task(ctx)
        outcome, raised = _call(definition, job, ctx, args, kwargs)
        if reporter is not None:
            reporter.flush()
        if hooks is not None:
            hooks.after_task(ctx, outcome.kind.value, outcome.error, raised)
        return outcome, raised
    finally:
        reset_current(token)


def _call(
    definition: Any, job: Job, ctx: TaskContext, args: list[Any], kwargs: dict[str, Any]
) -> tuple[Outcome, BaseException | None]:
    """The attempt's outcome, and the exception it raised (None when it returned or was cancelled)."""
    try:
        if definition.options.bind:
            args = [ctx, *args]
        value = definition.fn(*args, **kwargs)
        if inspect.isawaitable(value):
            value = asyncio.run(_await(value))
        return success(job, value), None
    except TaskCancelled as exc:
        return Outcome(job.id, job.token, OutcomeKind.CANCELLED, error=describe(exc)), None
    except Retry as exc:  # asked for, not a failure: no on_failure hook
        return requested_retry(job, exc), None
    except SoftTimeout as exc:
        # The task let its soft time limit escape: the attempt timed out (status TIMEOUT if final).
        timed_out = failure(job, exc, definition.should_retry(exc))
        return replace(timed_out, kind=OutcomeKind.TIMEOUT), exc
    except Exception as exc:
        return failure(job, exc, definition.should_retry(exc)), exc


async def _await(value: Any) -> Any:
    return await value


def make_context(
    job: Job, is_cancelled: Callable[[], bool], progress: ProgressReporter | LazyReporter | None = None
) -> TaskContext:
    """The TaskContext of a job's attempt; its set_progress goes to ``progress`` (none: validated only)."""
    return TaskContext(
        id=job.id,
        name=job.name,
        queue=job.queue,
        attempt=job.token,
        retries=job.retries,
        max_retries=job.max_retries,
        _cancel_check=is_cancelled,
        _report_progress=None if progress is None else progress.report,
    )


def success(job: Job, value: Any) -> Outcome:
    """A success outcome; a result that is not JSON becomes a non-retryable error instead."""
    if value is None:  # the usual result: no encoder call
        return Outcome.succeeded(job.id, job.token, "null")
    try:
        result_json = dumps(value, "result")
    except NotSerializable as exc:
        return Outcome(job.id, job.token, OutcomeKind.ERROR, error=describe(exc), retryable=False)
    return Outcome.succeeded(job.id, job.token, result_json)


def requested_retry(job: Job, exc: Retry) -> Outcome:
    """The outcome of an attempt that raised Retry: retryable whatever retry_on says, with the delay
    it asked for (None: the task's backoff) and whether it counts against max_retries."""
    delay_ms = None if exc.delay_seconds is None else int(exc.delay_seconds * 1000)
    return Outcome(
        job.id,
        job.token,
        OutcomeKind.ERROR,
        error=describe(exc),
        retryable=True,
        retry_in_ms=delay_ms,
        retry_counted=exc.count,
    )


def failure(job: Job, exc: BaseException, retryable: bool) -> Outcome:
    """An error outcome with the formatted traceback."""
    return Outcome(
        job.id,
        job.token,
        OutcomeKind.ERROR,
        error=describe(exc),
        traceback="".join(tb.format_exception(exc)),
        retryable=retryable,
    )
