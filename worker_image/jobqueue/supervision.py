"""Supervised long-lived loops: one bad step is logged and retried after a backoff, never a silent death.

Every background loop of jobqueue (the worker's acker, heartbeat, fetcher, cancel listener and pool
threads, the ``--processes`` parent, the scheduler, the local supervisor) runs under :func:`run_supervised`
or keeps a :class:`LoopGuard`. The loops still handle the failures they expect (a Redis outage) themselves;
this is for the ones nobody expected: a bug, a value no store accepts. Such a failure is logged with its
traceback and the loop is run again after an exponential backoff. A loop that keeps failing past its
policy's bound gives up and calls ``on_give_up``: a worker then stops heartbeating and exits non-zero
(:data:`EXIT_LOOP_DIED`), because a process whose threads are dead but which still renews its leases holds
its tasks for ever, and nothing outside it can tell.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# The exit code of a worker that stopped because one of its loops died (EX_SOFTWARE in sysexits.h): not
# 0 (a clean drain) and not 1 (a start-up error), so a supervisor or `kubectl describe` tells them apart.
EXIT_LOOP_DIED = 70

GiveUp = Callable[[str, BaseException], None]


@dataclass(frozen=True)
class RestartPolicy:
    """How a supervised loop is retried after an unexpected exception.

    ``max_failures`` consecutive failures give up (None: never); a run that lasted ``healthy_after``
    seconds before failing starts the count again, so rare failures over a long life never add up.
    """

    initial_delay: float = 0.1
    max_delay: float = 5.0
    max_failures: int | None = 5
    healthy_after: float = 30.0

    def delay(self, failures: int) -> float:
        """The pause before the next run after ``failures`` consecutive failures (1 = the first)."""
        exponent: int = max(0, min(failures - 1, 32))
        return min(self.max_delay, self.initial_delay * float(2**exponent))

    def gives_up(self, failures: int) -> bool:
        """Whether ``failures`` consecutive failures are past the bound."""
        return self.max_failures is not None and failures >= self.max_failures


# Never give up: a process whose only job is this loop (scheduler, local supervisor) keeps trying; each
# attempt is logged, so the failure is loud, and other replicas or a fix can take over.
FOREVER = RestartPolicy(max_failures=None)
# Give up at the first unexpected failure: the loop's state can no longer be trusted (a pool slot that
# lost track of its task's outcome), so only a restart of the process is safe.
NO_RESTART = RestartPolicy(max_failures=1)


class LoopGuard:
    """The failure count and backoff of one loop (for loops that handle each step themselves)."""

    def __init__(self, name: str, policy: RestartPolicy) -> None:
        self.name = name
        self.policy = policy
        self.failures = 0
        self._since = time.monotonic()

    def started(self) -> None:
        """A run begins (run_supervised): how long it lasts before failing decides whether the count
        starts again."""
        self._since = time.monotonic()

    def succeeded(self) -> None:
        """A step went well: the next failure is the first again."""
        self.failures = 0
        self._since = time.monotonic()

    def failed(self, exc: BaseException) -> float | None:
        """Log an unexpected failure (with its traceback); the delay before the next step, or None when
        the loop must give up."""
        now = time.monotonic()
        if now - self._since >= self.policy.healthy_after:
            self.failures = 0
        self._since = now
        self.failures += 1
        if self.policy.gives_up(self.failures):
            log.critical(
                "%s failed unexpectedly %d time(s) in a row; giving up",
                self.name,
                self.failures,
                exc_info=exc,
            )
            return None
        delay = self.policy.delay(self.failures)
        log.error(
            "%s failed unexpectedly (%d in a row); running it again in %.2fs",
            self.name,
            self.failures,
            delay,
            exc_info=exc,
        )
        return delay


def run_supervised(
    name: str,
    loop: Callable[[], None],
    *,
    policy: RestartPolicy,
    stop: threading.Event | None = None,
    on_give_up: GiveUp | None = None,
) -> None:
    """Run ``loop`` until it returns; after an unexpected exception, log it and run it again after a
    backoff. Past the policy's bound, or on a BaseException such as SystemExit (which a loop must never
    raise), call ``on_give_up(name, exc)`` with the last exception and return (without ``on_give_up``,
    re-raise it). ``stop`` cuts a backoff short."""
    guard = LoopGuard(name, policy)
    while True:
        guard.started()
        try:
            loop()
            return
        except Exception as exc:
            last: BaseException = exc
            delay = guard.failed(exc)
        except BaseException as exc:
            log.critical("%s died: %r", name, exc, exc_info=exc)
            last, delay = exc, None
        if delay is None:
            if on_give_up is None:
                raise last
            on_give_up(name, last)
            return
        if stop is not None:
            if stop.wait(delay):
                return
        else:
            time.sleep(delay)


def supervised_thread(
    name: str,
    loop: Callable[[], None],
    *,
    policy: RestartPolicy,
    stop: threading.Event | None = None,
    on_give_up: GiveUp | None = None,
) -> threading.Thread:
    """A daemon thread (not started) running ``loop`` under :func:`run_supervised`."""

    def target() -> None:
        run_supervised(name, loop, policy=policy, stop=stop, on_give_up=on_give_up)

    return threading.Thread(target=target, name=name, daemon=True)
