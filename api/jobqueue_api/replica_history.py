"""A small ring of replica samples per worker pool, kept in the API process for the UI's sparklines.

Pure (the caller passes the time): sampled when a pool's view is served, so it costs nothing when nobody
looks. A sample is kept when the replicas changed since the last one (a scale shows at once) or when
``interval`` seconds passed (a flat line stays cheap); at most ``size`` per pool and ``max_pools`` pools.
It is per API process and starts empty: the sparkline says "since this API started watching", which is
what a glance needs; the durable history is the pool's events.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReplicaSample:
    """Replicas of one pool at one time (unix seconds)."""

    at: float
    current: int
    ready: int
    desired: int | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "at": round(self.at, 3),
            "current": self.current,
            "ready": self.ready,
            "desired": self.desired,
        }


class ReplicaHistory:
    """Bounded replica samples of every pool, oldest first."""

    def __init__(self, size: int = 60, interval: float = 10.0, max_pools: int = 1000) -> None:
        self.size = size
        self.interval = interval
        self.max_pools = max_pools
        self._rings: OrderedDict[str, deque[ReplicaSample]] = OrderedDict()

    def observe(self, name: str, view: dict[str, Any], now: float) -> list[dict[str, Any]]:
        """Sample a pool's view (the backends' shape: ``status.current_replicas`` ...) and return its
        samples as JSON. A view whose counts are missing or not numbers is not sampled."""
        status = view.get("status") or {}
        sample = ReplicaSample(
            now,
            _count(status.get("current_replicas")) or 0,
            _count(status.get("ready_replicas")) or 0,
            _count(status.get("desired_replicas")),
        )
        ring = self._rings.get(name)
        if ring is None:
            ring = self._rings[name] = deque(maxlen=self.size)
            while len(self._rings) > self.max_pools:
                self._rings.popitem(last=False)  # the pool not looked at for longest
        self._rings.move_to_end(name)
        last = ring[-1] if ring else None
        if (
            last is None
            or (last.current, last.ready, last.desired) != (sample.current, sample.ready, sample.desired)
            or now - last.at >= self.interval
            or now < last.at  # the clock went back: start from here rather than stop sampling
        ):
            ring.append(sample)
        return [s.to_json() for s in ring]

    def forget(self, name: str) -> None:
        """Drop a deleted pool's samples (a new pool of that name starts afresh)."""
        self._rings.pop(name, None)


def _count(value: object) -> int | None:
    # bool is an int subclass; a status field from a resource anyone can write must not pass as one.
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31 else None
