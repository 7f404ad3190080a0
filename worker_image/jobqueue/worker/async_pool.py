"""The asyncio pool: one event loop (in its own thread) running up to ``concurrency`` tasks at once.

Coroutine tasks are cancelled at the hard limit and on force cancel (at their next await); soft timeout
raises nothing. Plain functions run in the loop's thread executor (docs/guarantees.md).

Its whole cost is the Python around each task, not the task's wait (issue 21: 1,000 tasks awaiting 50 ms
ran as fast as a no-op), so the per-task path is kept short:
- jobs reach the loop in batches: one wake-up of the loop (a write to its self-pipe, a syscall) per
  batch the fetcher leases, not per job;
- the cancel flag is a plain attribute, not a ``threading.Event`` (a Condition and two locks per task);
- hard time limits are checked in buckets of DEADLINE_TICK seconds, one loop timer per bucket, not one
  ``asyncio.timeout`` per task: its timer handle and heap push were ~14% of the loop's time (py-spy),
  the heap holding a cancelled handle for every task that ended early until asyncio clears it;
- the tracing span and the hooks are skipped when nothing would use them, as the thread pool does, and
  the progress reporter is made at the task's first report only.

uvloop was measured in place of asyncio's loop (bench.worker_cpu, 2 interleaved rounds at 100 and 1,000
tasks in flight): 40-47 us of worker CPU per task either way, so it is not used: what is left per task is
Python around the task (the Task object, the outcome's bookkeeping, the ack), not the loop's own work.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from jobqueue import tracing
from jobqueue.app import App
from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.context import reset_current, set_current
from jobqueue.errors import Retry, TaskCancelled, TaskTimeout
from jobqueue.supervision import GiveUp
from jobqueue.worker.execution import (
    describe,
    failure,
    make_context,
    prepare_call,
    requested_retry,
    success,
)
from jobqueue.worker.pool import OutcomeCallback
from jobqueue.worker.progress import ProgressSink

log = logging.getLogger(__name__)

# Hard time limits fire up to this much late (the thread pool's monitor polls every 0.05 s too).
DEADLINE_TICK = 0.05
# While no TracerProvider is installed the tracing check is repeated at most this often (one is installed
# once per process, and then stays: that answer is kept).
TRACING_RECHECK_SECONDS = 1.0


class _Flag:
    """A task's graceful-cancel flag: only ever set to True, read by ctx.is_cancelled()."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = False

    def is_set(self) -> bool:
        return self.value


class AsyncPool:
    """One asyncio event loop (in its own thread) running up to ``concurrency`` tasks at once."""

    def __init__(self, app: App, concurrency: int) -> None:
        self.app = app
        self.concurrency = concurrency
        self._loop = asyncio.new_event_loop()
        self._tasks: dict[str, tuple[Job, asyncio.Task[Outcome], _Flag]] = {}
        self._force: set[str] = set()
        # Deadline bucket (its end, in DEADLINE_TICKs of loop time) -> ids of the tasks due by then; the
        # bucket of each running task with a hard limit; the tasks cancelled for their limit.
        self._due: dict[int, set[str]] = {}
        self._bucket_of: dict[str, int] = {}
        self._timed_out: set[str] = set()
        self._tracing_seen = False
        self._tracing_checked_at = -math.inf
        self._on_outcome: OutcomeCallback | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._on_loop_died: GiveUp | None = None
        self._progress = ProgressSink(lambda: app.client.redis, app.settings)
        # None when the app has no task hook: the hot path then skips them with one test.
        self._hooks = app.hooks if app.hooks.has_task_hooks() else None
        # Jobs submitted from other threads, started by _drain in the loop; _drain_due is True while a
        # _drain is scheduled and has not begun taking jobs (see submit).
        self._incoming: deque[Job] = deque()
        self._drain_due = False

    def start(self, on_outcome: OutcomeCallback, on_loop_died: GiveUp | None = None) -> None:
        """Start the event loop thread."""
        self._on_outcome = on_outcome
        self._on_loop_died = on_loop_died
        self._thread = threading.Thread(target=self._run_loop, name="jobqueue-async", daemon=True)
        self._thread.start()

    def _run_loop(self) -> None:
        """The loop's thread. Should the loop ever stop other than by stop(), every task it holds would
        stay leased, renewed by each heartbeat, for ever: the worker is told, and exits to be restarted."""
        try:
            self._loop.run_forever()
        except BaseException as exc:  # reported, not swallowed: the worker exits on it
            self._loop_stopped(exc)
            return
        if not self._stopped:
            self._loop_stopped(RuntimeError("the asyncio pool's event loop stopped"))

    def _loop_stopped(self, exc: BaseException) -> None:
        if self._on_loop_died is None:
            raise exc
        self._on_loop_died("jobqueue-async", exc)

    def submit(self, job: Job) -> None:
        """Schedule a job on the loop (from any thread).

        The job is queued first, then a drain is scheduled only if none is pending: a drain clears
        ``_drain_due`` before it takes jobs, so a job queued after that check is either taken by that
        drain or finds the flag clear and schedules another. Either way no job is left behind, and a
        fetch of 100 jobs wakes the loop once (call_soon_threadsafe writes to the loop's self-pipe)."""
        self._incoming.append(job)
        if not self._drain_due:
            self._drain_due = True
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._drain_due = False
        incoming = self._incoming
        try:
            while incoming:
                self._begin(incoming.popleft())
        except Exception as exc:
            # asyncio would log it and go on, leaving the jobs queued behind it leased and never started.
            self._loop_stopped(exc)

    def _begin(self, job: Job) -> None:
        flag = _Flag()
        task = self._loop.create_task(self._run(job, flag))
        self._tasks[job.id] = (job, task, flag)
        task.add_done_callback(partial(self._finish, job))
        if job.timeout:
            self._watch_deadline(job.id, job.timeout)

    def _watch_deadline(self, task_id: str, timeout: float) -> None:
        if not math.isfinite(timeout):
            return  # no limit (math.ceil would raise in the loop, leaving the task leased for ever)
        bucket = math.ceil((self._loop.time() + timeout) / DEADLINE_TICK)
        due = self._due.get(bucket)
        if due is None:
            due = self._due[bucket] = set()
            self._loop.call_at(bucket * DEADLINE_TICK, self._expire, bucket)
        due.add(task_id)
        self._bucket_of[task_id] = bucket

    def _expire(self, bucket: int) -> None:
        """Cancel the tasks of a bucket that are still running: their attempts end TIMEOUT (_call)."""
        for task_id in self._due.pop(bucket, ()):
            self._bucket_of.pop(task_id, None)
            entry = self._tasks.get(task_id)
            if entry is not None:
                self._timed_out.add(task_id)
                entry[1].cancel()

    def _tracing(self, job: Job) -> bool:
        """Whether this attempt gets a span: the message carries a trace context, or a TracerProvider is
        installed (tracing.active(), asked at most once a TRACING_RECHECK_SECONDS until it says yes)."""
        if job.headers_json:
            return tracing.installed()  # the OpenTelemetry API, imported once (cached) when it is there
        if self._tracing_seen:
            return True
        now = time.monotonic()
        if now - self._tracing_checked_at >= TRACING_RECHECK_SECONDS:
            self._tracing_checked_at = now
            self._tracing_seen = tracing.active()
        return self._tracing_seen

    async def _run(self, job: Job, flag: _Flag) -> Outcome:
        """One attempt, in its tracing span when there is one to record (as execution.run_job)."""
        if not self._tracing(job):
            outcome, _ = await self._attempt(job, flag)
            return outcome
        with tracing.process_span(
            job.headers_json, task_id=job.id, name=job.name, queue=job.queue, attempt=job.token
        ) as span:
            outcome, raised = await self._attempt(job, flag)
            tracing.record_outcome(span, outcome.kind.value, outcome.error, raised)
        return outcome

    async def _attempt(self, job: Job, flag: _Flag) -> tuple[Outcome, BaseException | None]:
        prepared = prepare_call(self.app.registry, job)
        if isinstance(prepared, Outcome):
            return prepared, None
        definition, args, kwargs = prepared
        reporter = self._progress.lazy_reporter(job)
        ctx = make_context(job, flag.is_set, reporter)
        if definition.options.bind:
            args = [ctx, *args]
        token = set_current(ctx)
        try:
            hooks = self._hooks
            if hooks is not None:
                hooks.before_task(ctx)
            outcome, raised = await self._call(job, definition, args, kwargs, flag)
            reporter.flush()
            if hooks is not None:
                hooks.after_task(ctx, outcome.kind.value, outcome.error, raised)
            return outcome, raised
        finally:
            reset_current(token)

    async def _call(
        self, job: Job, definition: Any, args: list[Any], kwargs: dict[str, Any], flag: _Flag
    ) -> tuple[Outcome, BaseException | None]:
        """The attempt's outcome, and the exception it raised (None when it returned or was cancelled)."""
        try:
            call: Callable[[], Any]
            if definition.is_async:
                coro = definition.fn(*args, **kwargs)
            else:
                call = lambda: definition.fn(*args, **kwargs)  # noqa: E731
                coro = self._loop.run_in_executor(None, call)
            value = await coro
            return success(job, value), None
        except Retry as exc:
            return requested_retry(job, exc), None
        except (asyncio.CancelledError, TaskCancelled):
            # A force cancel wins over the time limit, as in the thread pool; a TaskCancelled the task
            # raised on seeing the graceful flag is a cancel too.
            if job.id in self._force:
                return Outcome(
                    job.id, job.token, OutcomeKind.CANCELLED, error="TaskCancelled: cancelled"
                ), None
            if job.id in self._timed_out:
                timeout = TaskTimeout(f"hard time limit of {job.timeout}s exceeded; coroutine cancelled")
                return Outcome(
                    job.id, job.token, OutcomeKind.TIMEOUT, error=describe(timeout), retryable=True
                ), timeout
            if flag.value:
                return Outcome(
                    job.id, job.token, OutcomeKind.CANCELLED, error="TaskCancelled: cancelled"
                ), None
            raise
        except Exception as exc:
            return failure(job, exc, definition.should_retry(exc)), exc
        except (SystemExit, KeyboardInterrupt) as exc:
            # The task's to report, as in the thread pool: out of a task, asyncio would re-raise it out of
            # run_forever and stop the loop with every other task in it.
            return failure(job, exc, False), exc

    def _finish(self, job: Job, task: asyncio.Task[Outcome]) -> None:
        self._tasks.pop(job.id, None)
        self._force.discard(job.id)
        self._timed_out.discard(job.id)
        bucket = self._bucket_of.pop(job.id, None)
        if bucket is not None:
            self._due[bucket].discard(job.id)
        if self._stopped or task.cancelled() or self._on_outcome is None:
            return
        try:
            next_job = self._on_outcome(task.result())
            if next_job is not None:
                self._begin(next_job)
        except Exception as exc:
            # asyncio would only log it, and the task would stay leased here for ever: the worker exits.
            if self._on_loop_died is None:
                raise
            self._on_loop_died("jobqueue-async", exc)

    def cancel(self, task_id: str, force: bool) -> None:
        """Graceful: flag. Force: cancel the coroutine."""

        def apply() -> None:
            entry = self._tasks.get(task_id)
            if entry is None:
                return
            entry[2].value = True
            if force:
                self._force.add(task_id)
                entry[1].cancel()

        self._loop.call_soon_threadsafe(apply)

    def stop(self) -> list[Job]:
        """Cancel everything still running and return those jobs."""
        self._stopped = True
        unfinished = [job for job, _, _ in list(self._tasks.values())]

        def shutdown() -> None:
            for _, task, _ in self._tasks.values():
                task.cancel()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        if self._thread is not None:
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()  # its executor's threads are not waited for
        return unfinished
