"""Task run time and queue wait histograms, failure and retry counters: aggregated in each worker, summed
cluster-wide in Redis.

Each worker counts observations locally (a dict increment under a lock, no I/O per task) and flushes the
deltas with its heartbeat, in the same pipelined round trip: one script call per queue adds them to the
queue's metrics hash atomically, so a scrape (one HGETALL per queue) never sees a histogram whose
buckets disagree with its count. The API's /metrics turns the hash into cumulative Prometheus histograms.

Hash fields (non-cumulative bucket counts, keyed by the bucket's upper bound so that a change of bounds
between versions never misfiles a count):

    run:<le>:<task>     attempts of ``task`` that ran longer than the previous bound and at most ``le``
    run:inf:<task>      attempts longer than the last bound
    run:sum:<task>      total run time in seconds (HINCRBYFLOAT)
    run:count:<task>    attempts
    wait:<le>:  wait:inf:  wait:sum:  wait:count:     the same for queue wait (no task label)
    failed:<task>       attempts Redis recorded as the task's final failure (FAILED or TIMEOUT: fail.lua
                        dead-letters both)
    retried:<task>      failed attempts Redis scheduled for a retry

The counters are taken from the completion script's reply (what Redis did, not what the worker hoped),
so a stale attempt that Redis refused is never counted. A worker killed before its next heartbeat loses
its unflushed counts: these are statistics; the task records in Redis and PostgreSQL are the truth.

Cardinality: the task label is a name the worker's code registered (an unregistered name is folded into
``OTHER_TASK``), and a worker keeps at most ``MAX_TASKS_PER_QUEUE`` names per queue. Never task ids.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from jobqueue.broker.completion import CompletionCode
from jobqueue.broker.leases import OutcomeKind
from jobqueue.broker.scripts import ScriptCall
from jobqueue.errors import ValidationError
from jobqueue.keys import QueueKeys
from jobqueue.payloads import check_text

# Seconds. Run time spans sub-millisecond tasks to hour-long batch jobs; queue wait likewise spans an idle
# system (about a millisecond) to a backlog of hours.
RUN_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 3600.0,
)  # fmt: skip
WAIT_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
)  # fmt: skip
RUN, WAIT = "run", "wait"
FAILED, RETRIED = "failed", "retried"
INF = "inf"
OTHER_TASK = "_other"
MAX_TASKS_PER_QUEUE = 200
# Flushes whose reply never came (Redis may or may not have added them) are re-sent as they were, never
# merged: a resend that Redis already applied is skipped by its sequence number. While Redis is down no
# task runs, so few pile up; past this many the oldest are dropped (counts are statistics, not state).
MAX_FLUSHES_IN_DOUBT = 256
# How long Redis remembers the last sequence number it applied for one writer and queue: a flush in doubt
# re-sent within this window is never counted twice.
APPLIED_SEQ_TTL_SECONDS = 3600

log = logging.getLogger(__name__)


def bound_label(bound: float) -> str:
    """A bucket bound as written in field names and in the ``le`` label (``0.005``, ``1.0``)."""
    return repr(float(bound))


@dataclass
class Histogram:
    """Non-cumulative bucket counts (the last one is +Inf), sum and count of one label set."""

    bounds: tuple[float, ...]
    buckets: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.buckets:
            self.buckets = [0] * (len(self.bounds) + 1)

    def observe(self, seconds: float) -> None:
        """Count one observation (negative values, from clock skew, count as zero)."""
        value = seconds if seconds > 0.0 else 0.0
        # bisect_left: a value equal to a bound belongs to that bound's bucket (Prometheus' le is <=).
        self.buckets[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def fields(self, kind: str, task: str) -> tuple[dict[str, int], dict[str, float]]:
        """Hash increments: ({bucket or count field: n}, {sum field: seconds}); empty buckets left out."""
        ints = {
            f"{kind}:{bound_label(b) if i < len(self.bounds) else INF}:{task}": n
            for i, (b, n) in enumerate(zip((*self.bounds, math.inf), self.buckets, strict=True))
            if n
        }
        ints[f"{kind}:count:{task}"] = self.count
        return ints, {f"{kind}:sum:{task}": self.total}


@dataclass(frozen=True)
class MetricsFlush:
    """One queue's increments as one numbered flush: sent until Redis confirms it, always with the same
    number, so a flush Redis ran but whose reply was lost is not added twice."""

    queue: str
    seq: int
    ints: dict[str, int]  # bucket and count fields
    floats: dict[str, float]  # sum fields


def outcome_counter(code: CompletionCode, kind: OutcomeKind) -> str | None:
    """The counter a recorded attempt adds to: RETRIED, FAILED (a final failure, dead-lettered) or none
    (a success, a cancel, a hand-back, or an attempt Redis refused as stale)."""
    if code is CompletionCode.RETRY_SCHEDULED:
        return RETRIED
    if code is CompletionCode.FINISHED and kind != OutcomeKind.CANCELLED:
        return FAILED
    return None


class TaskMetrics:
    """One worker's not yet flushed observations, per queue. Thread-safe: observed from the fetch and
    outcome threads, flushed from the heartbeat thread.

    Flushing is ``take()`` (everything not yet confirmed, oldest first), one script call per flush, then
    ``confirm()`` once Redis answered. A flush that got no answer stays in doubt and the next ``take()``
    returns it again unchanged."""

    def __init__(self, known_task: Callable[[str], bool], max_tasks: int = MAX_TASKS_PER_QUEUE) -> None:
        self._known_task = known_task
        self._max_tasks = max_tasks
        # Names this process's flushes in Redis: a restarted worker (same id) starts a new sequence.
        self.writer = os.urandom(8).hex()
        self._seq = 0
        self._in_doubt: list[MetricsFlush] = []
        self._lock = threading.Lock()
        self._run: dict[tuple[str, str], Histogram] = {}  # (queue, task label) -> histogram
        self._wait: dict[str, Histogram] = {}  # queue -> histogram
        self._counts: dict[tuple[str, str, str], int] = {}  # (queue, kind, task label) -> n
        self._labels: dict[tuple[str, str], str] = {}  # (queue, registered task) -> its label (bounded)
        self._seen: dict[str, int] = {}  # queue -> task labels given out by this worker

    def _task_label(self, queue: str, task: str) -> str:
        label = self._labels.get((queue, task))
        if label is not None:
            return label
        if not self._known_task(task):
            return OTHER_TASK  # not cached: unregistered names are caller input, unbounded
        try:
            check_text(task, "task")
        except ValidationError:
            # A registered name Redis cannot take (NUL, lone surrogate): in a field name it would fail
            # the heartbeat's whole pipeline, lease renewals included, on every beat.
            return OTHER_TASK
        seen = self._seen.get(queue, 0)
        label = task if seen < self._max_tasks else OTHER_TASK
        self._seen[queue] = seen + (label == task)
        self._labels[(queue, task)] = label
        return label

    def observe_run(self, queue: str, task: str, seconds: float) -> None:
        """One attempt of ``task`` ran ``seconds``."""
        with self._lock:
            key = (queue, self._task_label(queue, task))
            histogram = self._run.get(key)
            if histogram is None:
                histogram = self._run[key] = Histogram(RUN_BUCKETS)
            histogram.observe(seconds)

    def observe_waits(self, queue: str, waits_ms: Iterable[int]) -> None:
        """Leased tasks of ``queue`` waited these many milliseconds (negative = unknown, skipped)."""
        with self._lock:
            histogram = self._wait.get(queue)
            for ms in waits_ms:
                if ms < 0:
                    continue
                if histogram is None:
                    histogram = self._wait[queue] = Histogram(WAIT_BUCKETS)
                histogram.observe(ms / 1000)

    def count(self, queue: str, task: str, kind: str) -> None:
        """One attempt of ``task`` ended as ``kind`` (FAILED or RETRIED), as Redis recorded it."""
        with self._lock:
            key = (queue, kind, self._task_label(queue, task))
            self._counts[key] = self._counts.get(key, 0) + 1

    def take(self) -> list[MetricsFlush]:
        """The flushes to send now: those still in doubt, then one per queue with what was observed since
        the last ``take()``. They stay in doubt until ``confirm()``."""
        with self._lock:
            run, wait, counts = self._run, self._wait, self._counts
            self._run, self._wait, self._counts = {}, {}, {}
            fresh: dict[str, tuple[dict[str, int], dict[str, float]]] = {}
            for (queue, kind, task), n in counts.items():
                fresh.setdefault(queue, ({}, {}))[0][f"{kind}:{task}"] = n
            parts = [(queue, RUN, task, h) for (queue, task), h in run.items()]
            parts += [(queue, WAIT, "", h) for queue, h in wait.items()]
            for queue, kind, task, histogram in parts:
                ints, floats = fresh.setdefault(queue, ({}, {}))
                i, f = histogram.fields(kind, task)
                ints.update(i)
                floats.update(f)
            for queue, (ints, floats) in fresh.items():
                self._seq += 1
                self._in_doubt.append(MetricsFlush(queue, self._seq, ints, floats))
            if len(self._in_doubt) > MAX_FLUSHES_IN_DOUBT:
                dropped = len(self._in_doubt) - MAX_FLUSHES_IN_DOUBT
                log.warning("dropping the %d oldest task metric flushes Redis never confirmed", dropped)
                del self._in_doubt[:dropped]
            return list(self._in_doubt)

    def confirm(self, flushes: Iterable[MetricsFlush]) -> None:
        """Redis answered these flushes (added, or skipped as already added): forget them."""
        done = {flush.seq for flush in flushes}
        with self._lock:
            self._in_doubt = [flush for flush in self._in_doubt if flush.seq not in done]


def build_flush(prefix: str, writer: str, flush: MetricsFlush) -> ScriptCall:
    """The script call that adds one flush to its queue's metrics hash, atomically and at most once."""
    keys = QueueKeys(prefix, flush.queue)
    args: list[str | int | float] = [flush.seq, APPLIED_SEQ_TTL_SECONDS, len(flush.ints)]
    for name, n in flush.ints.items():
        args += [name, n]
    for name, seconds in flush.floats.items():
        args += [name, repr(seconds)]
    return ScriptCall("task_metrics", (keys.task_metrics, keys.task_metrics_applied(writer)), tuple(args))


def read_counters(kind: str, fields: Mapping[str, str]) -> dict[str, int]:
    """Task label -> count of one counter kind (FAILED, RETRIED) in a metrics hash (HGETALL)."""
    out: dict[str, int] = {}
    for name, value in fields.items():
        field_kind, sep, task = name.partition(":")
        if field_kind != kind or not sep:
            continue
        try:
            out[task] = int(value)
        except ValueError:
            continue  # a field written by hand; never fail a scrape for it
    return out


@dataclass(frozen=True)
class CumulativeHistogram:
    """One label set as Prometheus exposes it: cumulative (le, count) pairs ending with +Inf, and sum."""

    task: str
    buckets: list[tuple[str, float]]
    total: float


def read_histograms(
    kind: str, fields: Mapping[str, str], bounds: Sequence[float]
) -> list[CumulativeHistogram]:
    """Turn a metrics hash (HGETALL) into cumulative histograms of one kind, one per task label.

    Every series gets a bucket for each of ``bounds`` plus any other bound found in the field names
    (counts written by another version still add up); +Inf is the count, which a worker wrote atomically
    with the buckets, so the two always agree.
    """
    per_task: dict[str, tuple[dict[float, int], list[float]]] = {}
    for name, value in fields.items():
        field_kind, sep, rest = name.partition(":")
        if field_kind != kind or not sep:
            continue
        bound, _, task = rest.partition(":")
        counts, totals = per_task.setdefault(task, ({}, [0.0, 0.0]))
        try:
            if bound == "sum":
                totals[0] = float(value)
            elif bound == "count":
                totals[1] = float(value)
            elif bound != INF:
                counts[float(bound)] = counts.get(float(bound), 0) + int(value)
        except ValueError:
            continue  # a field written by hand; never fail a scrape for it
    out = []
    for task, (counts, (total, count)) in sorted(per_task.items()):
        running = 0
        buckets: list[tuple[str, float]] = []
        for upper in sorted(set(bounds) | set(counts)):
            running += counts.get(upper, 0)
            buckets.append((bound_label(upper), float(running)))
        buckets.append(("+Inf", count))
        out.append(CumulativeHistogram(task, buckets, total))
    return out
