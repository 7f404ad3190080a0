"""A worker pool's outcomes as its on_outcome callback receives them, from the pool's own threads: for
tests of a pool alone (no Redis)."""

from __future__ import annotations

import threading

from jobqueue.broker.leases import Outcome


class Outcomes:
    """Outcomes by task id; ``count`` counts every report, so a task reported twice shows."""

    def __init__(self) -> None:
        self.by_id: dict[str, Outcome] = {}
        self.count = 0
        self.cond = threading.Condition()

    def __call__(self, outcome: Outcome) -> None:
        with self.cond:
            self.by_id[outcome.task_id] = outcome
            self.count += 1
            self.cond.notify_all()

    def wait(self, *task_ids: str, timeout: float = 10) -> list[Outcome]:
        """The outcomes of ``task_ids``, in that order, once each has one (AssertionError after timeout)."""
        with self.cond:
            assert self.cond.wait_for(lambda: all(t in self.by_id for t in task_ids), timeout), (
                f"missing: {[t for t in task_ids if t not in self.by_id]}"
            )
            return [self.by_id[t] for t in task_ids]
