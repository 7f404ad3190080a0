"""The scheduler process: recovers expired leases, promotes due delayed tasks and fires cron schedules.

Any number of schedulers may run: every action is an idempotent script.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

from jobqueue.broker.client import Client
from jobqueue.broker.promotion import build_promote, parse_promote
from jobqueue.broker.redis_io import run_scripts
from jobqueue.errors import BrokerUnavailable
from jobqueue.schedules.code import SyncReport, sync_code_schedules
from jobqueue.schedules.model import Schedule
from jobqueue.schedules.registry import ScheduleRegistry, fire_due_schedules
from jobqueue.supervision import LoopGuard, RestartPolicy

log = logging.getLogger(__name__)

# A scheduler is the only process of its kind in many deployments: it never gives up, and a failing step
# (a bug, a schedule no store accepts) is retried every few seconds at most, each failure logged.
SCHEDULER_RESTARTS = RestartPolicy(initial_delay=0.1, max_delay=5.0, max_failures=None)


class Scheduler:
    """Runs maintenance ticks until stopped."""

    def __init__(
        self,
        client: Client,
        interval_seconds: float = 1.0,
        code_schedules: Mapping[str, Schedule] | None = None,
    ) -> None:
        self.client = client
        self.interval_seconds = interval_seconds
        # The app's @app.periodic schedules, synced by the first tick that reaches Redis (None: no app).
        self._code_schedules = code_schedules
        self.code_sync: SyncReport | None = None
        self._stop = threading.Event()
        self.scheduler_id = f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self._next_schedule_due: float | None = None  # monotonic time of the next schedule fire

    def stop(self) -> None:
        """End run() after the current tick."""
        self._stop.set()

    def tick(self) -> dict[str, int]:
        """One pass over every known queue: recover expired leases, promote due delayed tasks (and, on
        the first pass that succeeds, sync the app's code schedules)."""
        if self._code_schedules is not None and self.code_sync is None:
            self.code_sync = sync_code_schedules(ScheduleRegistry(self.client), self._code_schedules)
        queues = self.client.known_queues()
        recovered = self.client.recover_expired_leases(queues)
        replies = run_scripts(self.client.redis, [build_promote(self.client.settings, q) for q in queues])
        promoted = sum(parse_promote(reply).promoted for reply in replies)
        if promoted:
            log.debug("promoted %d due delayed task(s)", promoted)
        if recovered["requeued"] or recovered["dead_lettered"]:
            log.warning("recovered expired leases: %s", recovered)
        return {**recovered, **self.fire_schedules()}

    def fire_schedules(self) -> dict[str, int]:
        """Fire due cron schedules (each fire time claimed once across all schedulers)."""
        report = fire_due_schedules(self.client, self.scheduler_id)
        self._next_schedule_due = (
            None if report.next_due_in is None else time.monotonic() + report.next_due_in
        )
        return {
            "fired": report.fired,
            "missed": report.missed,
            "skipped": report.skipped,
            "replaced": report.replaced,
        }

    def run(self) -> None:
        """Tick every interval until stop(); in between, wake exactly when the next schedule is due."""
        next_tick = 0.0
        guard = LoopGuard("scheduler", SCHEDULER_RESTARTS)
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.interval_seconds
                    self.tick()
                else:
                    self.fire_schedules()
                guard.succeeded()
            except BrokerUnavailable as exc:
                log.warning("scheduler tick failed: %s", exc)
            except Exception as exc:
                # Not an outage: a bug or a poison value. Lease recovery and promotion ran before the
                # schedules in tick(), so the rest of the system keeps going while this is retried.
                delay = guard.failed(exc) or SCHEDULER_RESTARTS.max_delay
                next_tick = max(next_tick, time.monotonic() + delay)
                self._next_schedule_due = None
            wake_at = next_tick
            if self._next_schedule_due is not None:
                wake_at = min(wake_at, self._next_schedule_due)
            self._stop.wait(max(0.001, wake_at - time.monotonic()))
