"""The scheduler process: recovers expired leases and promotes due delayed tasks for every queue.

Any number of schedulers may run: every action is an idempotent script.
"""

from __future__ import annotations

import logging
import threading

from jobqueue.client import Client
from jobqueue.errors import BrokerUnavailable
from jobqueue.redis_io import run_scripts
from jobqueue.worker.jobs import build_fetch

log = logging.getLogger(__name__)


class Scheduler:
    """Runs maintenance ticks until stopped."""

    def __init__(self, client: Client, interval_seconds: float = 1.0) -> None:
        self.client = client
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()

    def stop(self) -> None:
        """End run() after the current tick."""
        self._stop.set()

    def tick(self) -> dict[str, int]:
        """One pass over every known queue: recover expired leases, promote due delayed tasks."""
        queues = self.client.known_queues()
        recovered = self.client.recover_expired_leases(queues)
        # fetch with max 0 only promotes due delayed tasks (and wakes idle workers).
        run_scripts(self.client.redis, [build_fetch(self.client.settings, q, 0, "scheduler") for q in queues])
        if recovered["requeued"] or recovered["dead_lettered"]:
            log.warning("recovered expired leases: %s", recovered)
        return recovered

    def run(self) -> None:
        """Tick every interval until stop()."""
        while not self._stop.is_set():
            try:
                self.tick()
            except BrokerUnavailable as exc:
                log.warning("scheduler tick failed: %s", exc)
            self._stop.wait(self.interval_seconds)
