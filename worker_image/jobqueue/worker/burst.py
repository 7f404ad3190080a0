"""Burst mode: a worker that runs its queues until nothing is left to run, then drains and exits.

The decision is made by the worker's own fetch loop (worker/fetching.py), so a burst run leases, acks,
retries and releases workflow children exactly as a long-running worker does. This module holds the two
pieces that are burst-only: when the queues count as idle, and the tally of how tasks ended.

Idle means: nothing was leased or waiting for its ack before a fetch, and that fetch found nothing ready
in any queue. Then a rate-limited queue (or one at its max in-flight) still has work, so the worker waits
as flow control says; a delayed task (a retry, a countdown) due within ``wait_seconds`` is waited for;
anything due later, or a paused queue, is left where it is.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from jobqueue.errors import ConfigurationError
from jobqueue.models import TaskStatus
from jobqueue.worker.jobs import FetchReply, Job, Outcome, OutcomeKind

# fail.lua's replies: the attempt was recorded and a retry scheduled, or the task finished.
_RETRY_SCHEDULED = 1
_FINISHED = 2
# Final statuses that make a burst run fail (exit code 1).
FAILING_STATUSES = (TaskStatus.FAILED, TaskStatus.TIMEOUT)
_WAIT_MAX_IN_FLIGHT = -3


@dataclass(frozen=True)
class RunSummary:
    """How the tasks a burst run (``jobqueue worker --burst``, ``run_until_idle``) finished.

    ``counts`` holds final statuses only (SUCCESS, FAILED, TIMEOUT, CANCELLED); ``retried`` counts
    attempts that failed and were scheduled again; ``lost`` counts outcomes refused because the lease had
    passed to another worker; ``failed_ids`` are the tasks that ended FAILED or TIMEOUT, in order."""

    counts: dict[str, int] = field(default_factory=dict)
    failed_ids: tuple[str, ...] = ()
    retried: int = 0
    lost: int = 0
    seconds: float = 0.0

    @property
    def succeeded(self) -> int:
        """Tasks that ended SUCCESS."""
        return self.counts.get(TaskStatus.SUCCESS.value, 0)

    @property
    def failed(self) -> int:
        """Tasks that ended FAILED or TIMEOUT (dead-lettered)."""
        return sum(self.counts.get(s.value, 0) for s in FAILING_STATUSES)

    @property
    def total(self) -> int:
        """Tasks that reached a final status in this run."""
        return sum(self.counts.values())

    @property
    def exit_code(self) -> int:
        """0 when no task ended FAILED or TIMEOUT, else 1."""
        return 1 if self.failed else 0

    def line(self) -> str:
        """The one-line summary ``jobqueue worker --burst`` prints."""
        parts = ", ".join(f"{self.counts.get(s.value, 0)} {s.value.lower()}" for s in _SHOWN)
        return (
            f"burst: {self.total} task(s) finished in {self.seconds:.2f}s: {parts}; "
            f"{self.retried} retried, {self.lost} lost lease(s)"
        )


_SHOWN = (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED)


def final_status(outcome: Outcome) -> TaskStatus:
    """The status a finished (not retried) outcome leaves its task in, as build_completion records it."""
    if outcome.kind == OutcomeKind.SUCCESS:
        return TaskStatus.SUCCESS
    if outcome.kind == OutcomeKind.TIMEOUT:
        return TaskStatus.TIMEOUT
    if outcome.kind == OutcomeKind.CANCELLED:
        return TaskStatus.CANCELLED
    return TaskStatus.FAILED


class Burst:
    """The burst state of one worker: what the last fetch saw, and the tally of recorded outcomes.

    ``observe`` runs in the fetch loop; ``record`` in the acker thread (hence the lock)."""

    def __init__(self, wait_seconds: float = 0.0) -> None:
        if not math.isfinite(wait_seconds) or wait_seconds < 0:
            raise ConfigurationError("burst wait must be a finite number of seconds >= 0")
        self.wait_seconds = wait_seconds
        self._started = time.monotonic()
        self._flow_wait: float | None = None
        self._next_due: float | None = None
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._failed: list[str] = []
        self._retried = 0
        self._lost = 0

    def begin_fetch(self) -> None:
        """Forget what the previous fetch saw."""
        self._flow_wait = None
        self._next_due = None

    def observe(self, reply: FetchReply, recheck_seconds: float) -> None:
        """Note one queue's fetch reply: flow control holding ready work back, or the next due time."""
        if reply.wait_ms > 0 or reply.wait_ms == _WAIT_MAX_IN_FLIGHT:
            wait = reply.wait_ms / 1000 if reply.wait_ms > 0 else recheck_seconds
            self._flow_wait = wait if self._flow_wait is None else min(self._flow_wait, wait)
        if reply.next_due_ms >= 0:
            due = reply.next_due_ms / 1000
            self._next_due = due if self._next_due is None else min(self._next_due, due)

    def idle_pause(self) -> float | None:
        """After an idle fetch: seconds to wait before fetching again, or None when the run is over."""
        if self._flow_wait is not None:
            return self._flow_wait
        if self._next_due is not None and self._next_due <= self.wait_seconds:
            # The fetch promotes a task the moment it is due; a few ms more cover clock rounding.
            return self._next_due + 0.005
        return None

    def record(self, batch: Sequence[tuple[Job, Outcome]], results: Sequence[int]) -> None:
        """Count recorded outcomes by how they ended (``results``: the ack / fail script replies)."""
        with self._lock:
            for (job, outcome), result in zip(batch, results, strict=True):
                if result == 0:
                    self._lost += 1
                elif outcome.kind != OutcomeKind.SUCCESS and result == _RETRY_SCHEDULED:
                    self._retried += 1
                elif outcome.kind == OutcomeKind.SUCCESS or result == _FINISHED:
                    status = final_status(outcome)
                    self._counts[status.value] += 1
                    if status in FAILING_STATUSES:
                        self._failed.append(job.id)

    def summary(self) -> RunSummary:
        """The tally so far."""
        with self._lock:
            return RunSummary(
                counts=dict(self._counts),
                failed_ids=tuple(self._failed),
                retried=self._retried,
                lost=self._lost,
                seconds=time.monotonic() - self._started,
            )
