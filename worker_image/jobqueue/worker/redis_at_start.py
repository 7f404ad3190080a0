"""A starting worker waits for Redis (JOBQUEUE_REDIS_STARTUP_WAIT_SECONDS) instead of exiting at once.

Building a worker connects to Redis (its pinned connections, a Cluster client's slot map). Exiting when
that fails is right for a typo in the URL on a laptop, and wrong in Kubernetes, where a worker often
starts before Redis answers (a Helm install, a node back before Redis, a failover): each exit is
restarted later than the one before, up to five minutes apart, so the workers would come back long after
Redis did. So the worker retries with backoff for a bounded time, logging each attempt, and keeps its
liveness file fresh meanwhile (it is alive and only waiting: the probe must not restart it for that). A
refused password is not waited for: no retry can cure it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from redis.exceptions import AuthenticationError

from jobqueue.errors import BrokerUnavailable
from jobqueue.worker.health import LivenessFile

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY_SECONDS = 0.1
MAX_DELAY_SECONDS = 5.0


def build_when_redis_answers(
    build: Callable[[], T],
    liveness: LivenessFile,
    wait_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``build()``, retried while it raises BrokerUnavailable, for at most ``wait_seconds``; then (or at
    once for a refused password) the last BrokerUnavailable is raised and the liveness file removed."""
    deadline = clock() + wait_seconds
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return build()
        except BrokerUnavailable as exc:
            left = deadline - clock()
            if isinstance(exc.__cause__, AuthenticationError) or left <= 0:
                liveness.remove()
                raise
            log.warning("waiting for Redis (%.0f s more at most): %s", left, exc)
            liveness.touch()
            sleep(min(delay, left))
            delay = min(delay * 2, MAX_DELAY_SECONDS)
