"""Run your tasks in tests and scripts on a real Redis: ``run_until_idle`` and the pytest plugin.

``run_until_idle(app)`` runs every task ready in the app's queues in this process, in a thread pool,
through the worker's own code (leases, fenced acks, retries, workflow release, results), and returns once
nothing is left to run: the in-process twin of ``jobqueue worker --burst``. The pytest plugin
(jobqueue/testing/pytest_plugin.py, registered through the ``pytest11`` entry point) gives each test
session a private Redis server; see docs/testing.md.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Sequence

from jobqueue.app import App
from jobqueue.errors import ConfigurationError, RunTimeout
from jobqueue.worker.burst import Burst, RunSummary
from jobqueue.worker.runtime import Worker
from jobqueue.worker.thread_pool import ThreadPool

__all__ = ["RunSummary", "RunTimeout", "run_until_idle"]

# After a timeout, tasks still running get this long to finish before their leases are handed back.
_TIMEOUT_GRACE_SECONDS = 2.0


def run_until_idle(
    app: App, queues: Sequence[str] | None = None, timeout: float = 30.0, *, concurrency: int = 4
) -> RunSummary:
    """Run ``queues`` (default: every queue ``app``'s tasks declare) until nothing is ready, in flight or
    due within ``timeout`` seconds (retries and countdowns included), and return how the tasks ended.

    Raises RunTimeout (with ``.summary``) when the queues are still busy after ``timeout`` seconds, and
    ConfigurationError when there is no queue to run. Set ``backoff_scale=0`` on the app's settings (the
    pytest plugin's ``jobqueue_app`` does) so retries do not wait out their real backoff."""
    names = list(queues) if queues is not None else app.task_queues()
    if not names:
        raise ConfigurationError("run_until_idle: the app registers no task, so there is no queue to run")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ConfigurationError("run_until_idle: timeout must be a finite number of seconds > 0")
    burst = Burst(wait_seconds=timeout)
    worker = Worker(
        app,
        ThreadPool(app, concurrency),
        names,
        worker_id=f"run-until-idle-{uuid.uuid4().hex[:12]}",
        grace_seconds=_TIMEOUT_GRACE_SECONDS,
        burst=burst,
    )
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        worker.stop()

    timer = threading.Timer(timeout, expire)
    timer.daemon = True
    timer.start()
    try:
        worker.run()
    finally:
        timer.cancel()
        worker.close()
    summary = burst.summary()
    if expired.is_set():
        raise RunTimeout(f"queues {', '.join(names)} still busy after {timeout}s ({summary.line()})", summary)
    return summary
