"""Rate-limit statistics of a queue, derived from its GCRA state hash exactly as ``lua/fetch.lua``
interprets it.

Apart from ``flow_control.py`` because it is the one place the Python side re-does the limiter's math
(the scripts decide; this only reports what they would decide right now, for ``app.queues`` and the API).
Pure: the caller reads the state and the Redis clock (``broker/queue_admin.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from jobqueue.flow_control import RateLimit


@dataclass(frozen=True)
class RateLimitStats:
    """The rate limiter's state right now (derived from the GCRA state on the Redis clock).

    ``current_count``: starts that still count against the limit (the GCRA debt, in tasks; it drains by
    one every interval). ``remaining``: starts allowed right now. ``burst_used``: burst slots in use
    (``burst - remaining``). ``wait_seconds``: until the next start is allowed (0 when ``remaining`` > 0).
    """

    queue: str
    enabled: bool
    limit: int | None
    period_seconds: float | None
    burst: int | None
    current_count: int
    remaining: int | None
    burst_used: int
    wait_seconds: float


def compute_rate_stats(
    queue: str, rate: RateLimit | None, state: Mapping[str, str], now_ms: float
) -> RateLimitStats:
    """Statistics from the GCRA state hash (``tat``, ``interval``) exactly as fetch.lua interprets it,
    including the rescaling of a debt recorded under a different interval."""
    if rate is None or not rate.enabled:
        return RateLimitStats(
            queue, False, rate.limit if rate else None, rate.period_seconds if rate else None,
            rate.burst if rate else None, 0, None, 0, 0.0,
        )  # fmt: skip
    interval = rate.interval_ms
    tat = float(state.get("tat") or 0)
    old_interval = float(state.get("interval") or 0)
    debt = max(0.0, tat - now_ms)
    if old_interval > 0 and old_interval != interval:
        debt = debt * interval / old_interval
    tolerance = (rate.burst - 1) * interval
    allowed = math.floor((tolerance - debt) / interval + 1e-9) + 1
    remaining = max(0, min(rate.burst, allowed))
    wait = 0.0 if remaining > 0 else max(0.0, debt - tolerance) / 1000
    current = min(rate.burst, math.ceil(debt / interval - 1e-9)) if debt > 0 else 0
    return RateLimitStats(
        queue=queue,
        enabled=True,
        limit=rate.limit,
        period_seconds=rate.period_seconds,
        burst=rate.burst,
        current_count=current,
        remaining=remaining,
        burst_used=rate.burst - remaining,
        wait_seconds=round(wait, 3),
    )
