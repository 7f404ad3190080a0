"""``ctx.set_progress`` in a worker: throttled writes of one attempt's progress to its task hash.

A task may report progress in a tight loop; each report is not a Redis round trip. At most one write per
``JOBQUEUE_PROGRESS_INTERVAL_SECONDS`` per attempt: a report inside the interval is kept as pending and
replaces any pending one; a timer writes it once the interval has passed (so a task that reports then
works quietly for minutes still shows its latest value), and ``flush`` (called before the attempt's
outcome is reported) writes whatever is still pending, so a finished task shows the last value reported.
A failed write (Redis away) is logged and dropped: progress is advisory, and the task must neither fail
nor stall because of it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from jobqueue.broker.leases import Job
from jobqueue.broker.task_progress import write_progress
from jobqueue.settings import Settings

log = logging.getLogger(__name__)

Write = Callable[[dict[str, Any]], object]


class ProgressReporter:
    """One attempt's throttled progress writer (thread-safe: a task may report from its own threads)."""

    def __init__(
        self,
        write: Write,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._write = write
        self._interval = interval
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._last_write: float | None = None
        self._pending: tuple[int, dict[str, Any]] | None = None
        self._timer: threading.Timer | None = None
        self._closed = False
        self._sent = 0
        self._seq = 0  # numbers each report; a write never replaces a newer one (see _send)
        self._send_lock = threading.Lock()
        self._written_seq = 0

    def report(self, value: dict[str, Any]) -> None:
        """Record a validated progress value (jobqueue.progress.progress_value); written now unless a
        write happened less than the interval ago."""
        now = self._clock()
        with self._lock:
            self._seq += 1
            stamped = (self._seq, {**value, "at": round(self._wall_clock(), 3)})
            if self._closed:
                return  # a report from a thread the task left running after it returned
            if self._last_write is not None and now - self._last_write < self._interval:
                self._pending = stamped
                if self._timer is None:
                    # One timer at a time, so the trailing value is written without waiting for another
                    # report.
                    self._arm(self._last_write + self._interval - now)
                return
            self._pending = None
            self._last_write = now
            self._sent += 1
        self._send(stamped)

    def _trailing(self) -> None:
        with self._lock:
            self._timer = None
            if self._pending is None or self._closed:
                return
            now = self._clock()
            if self._last_write is not None and now - self._last_write < self._interval:
                # A report wrote directly since this timer was armed: the pending value waits for the
                # end of that write's interval, not this one's.
                self._arm(self._last_write + self._interval - now)
                return
            pending, self._pending = self._pending, None
            self._last_write = now
            self._sent += 1
        self._send(pending)

    def _arm(self, delay: float) -> None:
        """Start the trailing-write timer (the caller holds the lock; daemon: it never holds a stopping
        process up)."""
        self._timer = threading.Timer(max(0.0, delay), self._trailing)
        self._timer.daemon = True
        self._timer.start()

    def flush(self) -> None:
        """Write the pending value, if any, and take no more reports: called once the attempt's code has
        returned, before its outcome is reported."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            pending, self._pending = self._pending, None
            if pending is not None:
                self._sent += 1
        if pending is not None:
            self._send(pending)

    @property
    def writes(self) -> int:
        """How many values were sent to the store so far."""
        return self._sent

    def _send(self, numbered: tuple[int, dict[str, Any]]) -> None:
        seq, value = numbered
        # The timer and the task's thread may both send: one at a time, and an older value is dropped
        # once a newer one was written, so the stored value is always the latest.
        with self._send_lock:
            if seq <= self._written_seq:
                return
            self._written_seq = seq
            try:
                self._write(value)
            except Exception as exc:  # advisory data: never the task's failure, never the worker's
                log.warning("could not store task progress: %s: %s", type(exc).__name__, exc)


class ProgressSink:
    """Makes the reporter of each attempt run by a pool; writes through the connection ``connection()``
    returns, asked for at the first write only (most tasks never report progress). A redis-py client is
    thread-safe; a process-pool child has its own app, hence its own client."""

    def __init__(self, connection: Callable[[], redis.Redis], settings: Settings) -> None:
        self._connection = connection
        self._settings = settings

    def reporter(self, job: Job) -> ProgressReporter:
        """A reporter for this attempt of ``job`` (fenced by its token: a stale attempt writes nothing)."""
        connection, settings, task_id, token = self._connection, self._settings, job.id, job.token

        def write(value: dict[str, Any]) -> bool:
            return write_progress(connection(), settings, task_id, token, value)

        return ProgressReporter(write, settings.progress_interval_seconds)

    def lazy_reporter(self, job: Job) -> LazyReporter:
        """A reporter for ``job`` made at its first report (see LazyReporter)."""
        return LazyReporter(self, job)


class LazyReporter:
    """One attempt's reporter, made at the task's first report. Most tasks never report progress, and a
    ProgressReporter per task (two locks, a closure) was ~3% of the asyncio pool's no-op cost (py-spy)."""

    __slots__ = ("_closed", "_job", "_reporter", "_sink")
    # Taken only at a first report: a task may report from several of its threads at once.
    _making = threading.Lock()

    def __init__(self, sink: ProgressSink, job: Job) -> None:
        self._sink = sink
        self._job = job
        self._reporter: ProgressReporter | None = None
        self._closed = False

    def report(self, value: dict[str, Any]) -> None:
        """As ProgressReporter.report."""
        reporter = self._reporter
        if reporter is None:
            with LazyReporter._making:
                if self._closed:
                    return  # a report from a thread the task left running after it returned
                if self._reporter is None:
                    self._reporter = self._sink.reporter(self._job)
                reporter = self._reporter
        reporter.report(value)

    def flush(self) -> None:
        """As ProgressReporter.flush; nothing to write when the task never reported."""
        with LazyReporter._making:
            self._closed = True
            reporter = self._reporter
        if reporter is not None:
            reporter.flush()
