"""The worker's idle wait run in an idle child of the process pool, so a task enqueue hands to this parked
worker starts in the process that popped it.

When the worker process itself waits, a handed-off task pays a second wake-up before it starts: the
worker's thread wakes from its ``BLPOP``, encodes the job and writes it to a child's pipe, and the child
wakes from its read (about 0.15 ms at the median over the thread pool, whose idle slot pops and runs the
task in one thread: docs/benchmarks.md). Here the child pops the inbox and the wake-up keys on its own Redis
connection, reports what it popped to the worker process over its pipe *before* it runs the task, and runs
it. The worker process books the lease from that report (the same record, decoded the same way) before it
reads the child's outcome, so heartbeats, the hard time limit, cancellation and a crash of the child are
handled exactly as for a job it sent; only the wake-up is the child's own.

Wire, both ways JSON: worker → child ``{"wait": {"keys", "inboxes", "seconds", "serial"}}``; child → worker
``{"popped": [key, value] | null, "error": text | null}``, then, after a hand-off, the outcome as usual.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from typing import Any

import redis

from jobqueue.broker.leases import Job, parse_handoff
from jobqueue.errors import BrokerUnavailable, JobQueueError

# Hand-offs arriving closer together than this (on average) are waited for by the worker process itself.
# The child's wait saves the worker process's wake-up and the pipe hop on the task's path, but costs a
# wake-up more per task beside it (the worker reads the child's report, and its fetch loop hands the next
# wait to another child): measured with bench.latency_ab, it lowered the p50 at 100 tasks/s (10 ms apart)
# and raised it at 800/s (1.25 ms apart) on 2 busy cores, where those wake-ups queue behind each other.
CHILD_WAIT_MIN_GAP_SECONDS = 0.005
# Weight of each new gap in the average (a burst moves it within a few hand-offs).
_GAP_WEIGHT = 0.25


class HandoffPace:
    """How far apart hand-offs arrive, to choose where the next idle wait runs (pure: no clock of its own).
    An idle worker (no hand-off yet, or its last wait got none) waits in a child."""

    def __init__(self) -> None:
        self.gap = math.inf  # average seconds between hand-offs
        self._last: float | None = None

    def handed_off(self, now: float) -> None:
        """A wait got a hand-off at ``now`` (monotonic seconds)."""
        if self._last is not None:
            gap = now - self._last
            self.gap = gap if math.isinf(self.gap) else self.gap + _GAP_WEIGHT * (gap - self.gap)
        self._last = now

    def quiet(self) -> None:
        """A wait ended without a hand-off: the worker is idle again."""
        self.gap = math.inf
        self._last = None

    def wait_in_child(self) -> bool:
        """Whether the next idle wait should run in a child."""
        return self.gap >= CHILD_WAIT_MIN_GAP_SECONDS


# Books a task the child popped from the worker's inbox of ``queue``: (the job, which is already running,
# and the capacity the worker has left parked). Called by the pool's monitor thread.
AdoptHandoff = Callable[[str, str], tuple[Job, int]]


class ChildWait:
    """One idle wait handed to a child, and what came of it (set by the pool's monitor thread)."""

    def __init__(self, keys: list[str], inboxes: dict[str, str], seconds: float, adopt: AdoptHandoff) -> None:
        self.keys = keys
        self.inboxes = inboxes  # inbox key -> queue
        self.seconds = seconds
        self.adopt = adopt
        self.done = threading.Event()
        self.handed_off: tuple[str, int] | None = None  # (queue, capacity left) after a hand-off
        self.error: Exception | None = None

    def message(self, serial: int) -> bytes:
        """What the worker process sends the child; ``serial`` is the one a handed-off job gets."""
        spec = {"keys": self.keys, "inboxes": self.inboxes, "seconds": self.seconds, "serial": serial}
        return json.dumps({"wait": spec}).encode()

    def report(self, data: bytes) -> tuple[str, str] | None:
        """Take the child's report: (queue, record) when it popped a hand-off, which it now runs; None
        when it was woken, timed out or failed (then the wait is over here: the fetch loop fetches)."""
        message: dict[str, Any] = json.loads(data)
        if message.get("error"):
            self.error = BrokerUnavailable(f"idle wait in a child process failed: {message['error']}")
        popped = message.get("popped")
        queue = self.inboxes.get(popped[0]) if popped else None
        if queue is None or popped is None:
            return None
        return queue, popped[1]

    def finish(self, handed_off: tuple[str, int] | None = None) -> None:
        """The wait is over (with what it got, if anything): wake the fetch loop."""
        self.handed_off = handed_off
        self.done.set()


def is_wait_message(message: dict[str, Any]) -> bool:
    """Whether a message the child received is an idle wait (else it is a job)."""
    return "wait" in message


class WaitFailed(JobQueueError):
    """The child's idle wait failed and was reported (only inside the child: it opens a new connection for
    its next wait, since one that failed mid-reply must not be reused)."""


def wait_in_child(
    spec: dict[str, Any], blocking: redis.Redis, send: Callable[[bytes], None], default_timeout: float | None
) -> tuple[int, Job] | None:
    """In the child: pop the wake-up keys and the inboxes, report what was popped, and return (serial,
    job) of a handed-off task to run now, or None. The report goes out before the task runs, so the worker
    process holds the lease (and can kill the child for it) by the time the task could report. Raises
    WaitFailed once a failure is reported."""
    try:
        popped = blocking.blpop(spec["keys"], timeout=spec["seconds"])
    except (redis.RedisError, UnicodeDecodeError) as exc:
        # Reported, not raised: the child stays up and the worker's fetch loop backs off as after a failed
        # wait of its own. A record that was popped but could not be decoded (not UTF-8: nothing jobqueue
        # writes) is lost here, and its task, if it was one, is recovered when its lease expires.
        send(json.dumps({"popped": None, "error": f"{type(exc).__name__}: {exc}"}).encode())
        raise WaitFailed from exc
    send(json.dumps({"popped": popped, "error": None}).encode())
    queue = spec["inboxes"].get(popped[0]) if popped else None
    if queue is None or popped is None:
        return None
    reply, _ = parse_handoff(queue, popped[1], default_timeout)
    return int(spec["serial"]), reply.jobs[0]
