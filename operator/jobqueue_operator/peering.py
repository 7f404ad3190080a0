"""Running several operator replicas safely: kopf peering, with the oldest replica in charge.

kopf's peering is how kopf operators avoid handling the same objects twice: each replica writes a
keep-alive (identity, priority, lifetime) into a ``KopfPeering`` object (``ClusterKopfPeering`` for
``--all-namespaces``); a replica that sees a live peer of higher priority pauses its watches, timers and
handlers, and resumes once that peer's keep-alive expires or it leaves. Two live peers of the *same*
priority both pause (kopf cannot tell which should win), so every replica needs its own priority.

The priority here falls with the start time: the replica that started first leads, a new replica (a
rolling update, a rescheduled pod) waits behind it instead of taking over mid-reconcile, and the leader
changes only when the leader stops. A random tie-break keeps two replicas started in the same millisecond
apart. A developer's ``kopf run --dev`` (priority 666) pauses every replica, as kopf intends.
"""

from __future__ import annotations

import random

import kopf

# Spread between replicas started in the same millisecond.
TIE_BREAK = 1000


def leader_priority(started_at: float, rng: random.Random) -> int:
    """The kopf peering priority of a replica started at ``started_at`` (UNIX seconds): lower for later
    starts, so the oldest live replica has the highest priority. Fits in a signed 64-bit integer (what
    the API server stores) until the year 2262."""
    return -(int(started_at * 1000) * TIE_BREAK + rng.randrange(TIE_BREAK))


def kopf_settings(*, lifetime_seconds: int) -> kopf.OperatorSettings:
    """kopf settings for a peered replica. ``lifetime_seconds`` bounds the take-over: a replica that dies
    without saying goodbye (SIGKILL, a lost node) is considered gone that long after its last keep-alive,
    which kopf sends every lifetime minus 5..10 s (at least every second)."""
    settings = kopf.OperatorSettings()
    settings.peering.lifetime = lifetime_seconds
    settings.peering.stealth = True  # no log line per keep-alive; pauses and resumes are still logged
    return settings
