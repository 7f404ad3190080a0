"""The worker's task log: one structured line per task transition, written by the worker process itself.

Lines (``event`` field, logger ``jobqueue.worker.tasks``):
- ``received``: leased by this worker (a fetch, or a hand-off from enqueue);
- ``started``: given a pool slot;
- then, once Redis recorded the attempt (the acker's CompletionCode reply, so the line says what really
  happened, not what the worker hoped): ``succeeded``; ``retried`` (it waits for its retry);
  ``cancelled``; ``timed_out`` or ``failed`` followed by ``dead_lettered`` for a final failure.

Each line carries task_id, task (the name), queue, attempt (the fencing token), worker and, once it ran,
duration_ms. Never arguments or results unless ``log_task_payload_chars`` is set, and then cut short:
they are the application's data. An attempt Redis refused as stale is logged by
``broker.leases.log_stale_completion`` instead.

Cheap on the hot path: ``isEnabledFor`` is asked once per batch, so a worker logging at WARNING pays
almost nothing, and the JSON is built only by the handler that writes the line. The ``succeeded`` line,
the one every task writes, is logged at ``JOBQUEUE_LOG_TASK_SUCCESS_LEVEL`` (INFO, or DEBUG for pools
fast enough that the line is a large share of their cost).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from jobqueue.broker.completion import CompletionCode
from jobqueue.broker.leases import Job, Outcome, OutcomeKind

log = logging.getLogger("jobqueue.worker.tasks")

# received and started are logged at DEBUG, the end of each attempt at INFO or above. Measured on 2 busy
# cores, 2,000 no-op tasks on a thread pool of 8 (median of 9 runs): the worker process spent 0.054 s of
# CPU without task lines and 0.105 s with one JSON line per task (~25 us each: stdlib logging's record,
# caller lookup, encoding, write), the same at WARNING. Three lines per task would triple that, so the
# default is one, and `--log-level DEBUG` shows every step.
STEP_LEVEL = logging.DEBUG
_SUCCEEDED = "task %s succeeded%s"
# The error text of a failure line is cut to this (the full text and traceback are on the task record).
ERROR_CHARS = 500


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"...[{len(text) - limit} more]"


class TaskLog:
    """Writes the transition lines of one worker process (see the module docstring)."""

    def __init__(self, worker_id: str, payload_chars: int = 0, success_level: int = logging.INFO) -> None:
        self.worker_id = worker_id
        self.payload_chars = payload_chars
        # JOBQUEUE_LOG_TASK_SUCCESS_LEVEL: INFO, or DEBUG to gate the one line every task writes.
        self.success_level = success_level
        # (task id, token) -> seconds the attempt ran, from its outcome to the acker's line. Set and
        # popped from different threads: single dict operations, atomic under the interpreter lock.
        self._durations: dict[tuple[str, int], float] = {}

    def _fields(self, job: Job, event: str) -> dict[str, Any]:
        return {
            "event": event,
            "task_id": job.id,
            "task": job.name,
            "queue": job.queue,
            "attempt": job.token,
            "worker": self.worker_id,
        }

    def received(self, jobs: Sequence[Job]) -> None:
        """Jobs leased by this worker (DEBUG: see STEP_LEVEL)."""
        if not jobs or not log.isEnabledFor(STEP_LEVEL):
            return
        for job in jobs:
            fields = self._fields(job, "received")
            if self.payload_chars:
                fields["task_args"] = _cut(job.args_json, self.payload_chars)
                fields["task_kwargs"] = _cut(job.kwargs_json, self.payload_chars)
            log.log(
                STEP_LEVEL, "task %s[%s] received (attempt %d)", job.name, job.id, job.token, extra=fields
            )

    def started(self, jobs: Sequence[Job]) -> None:
        """Jobs given a pool slot (DEBUG: see STEP_LEVEL)."""
        if not jobs or not log.isEnabledFor(STEP_LEVEL):
            return
        for job in jobs:
            fields = self._fields(job, "started")
            log.log(STEP_LEVEL, "task %s[%s] started (attempt %d)", job.name, job.id, job.token, extra=fields)

    def ran(self, outcome: Outcome, seconds: float) -> None:
        """An attempt ended after ``seconds`` (its line waits for the acker's reply)."""
        self._durations[(outcome.task_id, outcome.token)] = seconds

    def recorded(self, batch: Sequence[tuple[Job, Outcome]], codes: Sequence[CompletionCode]) -> None:
        """Lines for a batch of outcomes Redis recorded (codes in batch order)."""
        enabled = log.isEnabledFor(logging.INFO)
        succeeded = log.isEnabledFor(self.success_level)
        for (job, outcome), code in zip(batch, codes, strict=True):
            seconds = self._durations.pop((job.id, job.token), None)
            if code.stale:
                continue
            if code is CompletionCode.SUCCEEDED:
                if succeeded:
                    self._succeeded(job, outcome, seconds)
            elif enabled:
                self._recorded(job, outcome, code, seconds)

    def _succeeded(self, job: Job, outcome: Outcome, seconds: float | None) -> None:
        """The success line, handed to the logger's handlers directly: Logger.info would also look up
        the calling frame (findCaller: a stack walk) for a file and line no handler here prints."""
        fields = self._fields(job, "succeeded")
        took = ""
        if seconds is not None:
            fields["duration_ms"] = round(seconds * 1000, 3)
            took = f" in {fields['duration_ms']:.1f} ms"
        if self.payload_chars:
            fields["result"] = _cut(outcome.result_json, self.payload_chars)
        name = f"{job.name}[{job.id}]"
        args = (name, took)
        log.handle(log.makeRecord(log.name, self.success_level, "", 0, _SUCCEEDED, args, None, extra=fields))

    def _recorded(self, job: Job, outcome: Outcome, code: CompletionCode, seconds: float | None) -> None:
        fields = self._fields(job, "")
        took = ""
        if seconds is not None:
            fields["duration_ms"] = round(seconds * 1000, 3)
            took = f" in {fields['duration_ms']:.1f} ms"
        name = f"{job.name}[{job.id}]"
        if code is not CompletionCode.RETRY_SCHEDULED and code is not CompletionCode.FINISHED:
            return  # RELEASED: handed back unstarted, no transition of its own
        fields["error"] = _cut(outcome.error, ERROR_CHARS)
        if code is CompletionCode.RETRY_SCHEDULED:
            fields["event"] = "retried"
            log.warning("task %s failed%s, retry scheduled: %s", name, took, fields["error"], extra=fields)
            return
        if outcome.kind == OutcomeKind.CANCELLED:
            fields["event"] = "cancelled"
            log.info("task %s cancelled%s", name, took, extra=fields)
            return
        timed_out = outcome.kind == OutcomeKind.TIMEOUT
        fields["event"] = "timed_out" if timed_out else "failed"
        fields["status"] = "TIMEOUT" if timed_out else "FAILED"
        log.error(
            "task %s %s%s: %s",
            name,
            "timed out" if timed_out else "failed",
            took,
            fields["error"],
            extra=fields,
        )
        # fail.lua moves every final failure (timeouts too) to the dead-letter queue in the same script.
        dead = {**fields, "event": "dead_lettered"}
        dead.pop("duration_ms", None)
        log.error("task %s dead-lettered", name, extra=dead)
