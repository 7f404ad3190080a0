"""The queue's config hash (``QueueKeys.config``): its field names and the codec between it and the
model of ``flow_control.py``.

The Lua scripts read these fields (``lua/fetch.lua`` the flow control, ``lua/fail.lua`` the retry defaults,
``lua/recover.lua`` the dead-letter threshold), so their names are the one contract between the Python
side and the scripts; they live here, apart from the validation of what an admin asks for, so that contract
is in one place. Pure: encodes validated values as hash fields and decodes an HGETALL reply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from jobqueue.flow_control import (
    DEFAULT_WEIGHTS,
    PriorityPolicy,
    QueueConfig,
    RateLimit,
    RetryDefaults,
)
from jobqueue.models import Priority

# Hash fields of QueueKeys.config that fetch.lua reads (keep in sync with its HMGET).
F_PAUSED = "paused"
F_MAX_IN_FLIGHT = "max_in_flight"
F_RATE_LIMIT = "rate_limit"
F_RATE_PERIOD_MS = "rate_period_ms"
F_RATE_BURST = "rate_burst"
F_RATE_ENABLED = "rate_enabled"
F_POLICY = "priority_policy"
F_WEIGHTS = "weights"
F_WEIGHTED_CURSOR = "weighted_cursor"
RATE_FIELDS = (F_RATE_LIMIT, F_RATE_PERIOD_MS, F_RATE_BURST, F_RATE_ENABLED)
# Read by fail.lua (only when a task leaves its retry policy to the queue) and recover.lua.
F_RETRY_MAX_RETRIES = "retry_max_retries"
F_RETRY_BACKOFF = "retry_backoff"
F_RETRY_BASE_MS = "retry_base_ms"
F_RETRY_MAX_MS = "retry_max_ms"
F_RETRY_JITTER = "retry_jitter"
RETRY_FIELDS = (F_RETRY_MAX_RETRIES, F_RETRY_BACKOFF, F_RETRY_BASE_MS, F_RETRY_MAX_MS, F_RETRY_JITTER)
F_MAX_LOST_LEASES = "max_lost_leases"
# Read by fetch.lua (lua/_lease.lua): a task of the queue not started this long after its enqueue expires.
F_EXPIRES_MS = "expires_ms"


def rate_limit_fields(rate: RateLimit) -> dict[str, str]:
    """The config hash fields that encode a rate limit."""
    return {
        F_RATE_LIMIT: str(rate.limit),
        F_RATE_PERIOD_MS: str(round(rate.period_seconds * 1000)),
        F_RATE_BURST: str(rate.burst),
        F_RATE_ENABLED: "1" if rate.enabled else "0",
    }


def priority_rate_field_names(priority: Priority) -> tuple[str, str, str]:
    """The config hash fields of one priority level's own rate limit (read by _flow.lua)."""
    level = priority.value
    return (f"rate_limit_{level}", f"rate_period_ms_{level}", f"rate_burst_{level}")


def priority_rate_fields(priority: Priority, rate: RateLimit) -> dict[str, str]:
    """The config hash fields that encode one priority level's own rate limit."""
    limit, period, burst = priority_rate_field_names(priority)
    return {limit: str(rate.limit), period: str(round(rate.period_seconds * 1000)), burst: str(rate.burst)}


def _parse_priority_rates(raw: Mapping[str, str]) -> dict[Priority, RateLimit]:
    rates = {}
    for priority in Priority:
        limit, period, burst = priority_rate_field_names(priority)
        if raw.get(limit):
            rates[priority] = RateLimit(
                limit=int(raw[limit]),
                period_seconds=int(raw.get(period) or 1000) / 1000,
                burst=int(raw.get(burst) or 1),
            )
    return rates


def retry_default_fields(defaults: RetryDefaults) -> dict[str, str]:
    """The config hash fields that encode retry defaults (delays in whole milliseconds)."""
    return {
        F_RETRY_MAX_RETRIES: str(defaults.max_retries),
        F_RETRY_BACKOFF: defaults.backoff,
        F_RETRY_BASE_MS: str(round(defaults.base_seconds * 1000)),
        F_RETRY_MAX_MS: str(round(defaults.max_seconds * 1000)),
        F_RETRY_JITTER: "1" if defaults.jitter else "0",
    }


def _parse_retry_defaults(raw: Mapping[str, str]) -> RetryDefaults | None:
    if not raw.get(F_RETRY_MAX_RETRIES):
        return None
    return RetryDefaults(
        max_retries=int(raw[F_RETRY_MAX_RETRIES]),
        backoff=raw.get(F_RETRY_BACKOFF) or "exponential",
        base_seconds=int(raw.get(F_RETRY_BASE_MS) or 1000) / 1000,
        max_seconds=int(raw.get(F_RETRY_MAX_MS) or 300_000) / 1000,
        jitter=raw.get(F_RETRY_JITTER, "1") != "0",
    )


def parse_config(queue: str, raw: Mapping[str, str]) -> QueueConfig:
    """Decode a config hash (HGETALL) into a QueueConfig."""
    rate = None
    if raw.get(F_RATE_LIMIT):
        rate = RateLimit(
            limit=int(raw[F_RATE_LIMIT]),
            period_seconds=int(raw.get(F_RATE_PERIOD_MS) or 1000) / 1000,
            burst=int(raw.get(F_RATE_BURST) or 1),
            enabled=raw.get(F_RATE_ENABLED, "1") != "0",
        )
    max_in_flight = int(raw.get(F_MAX_IN_FLIGHT) or 0)
    policy = PriorityPolicy(raw.get(F_POLICY) or PriorityPolicy.STRICT.value)
    weights = None
    if policy == PriorityPolicy.WEIGHTED:
        w = json.loads(raw.get(F_WEIGHTS) or json.dumps(DEFAULT_WEIGHTS))
        weights = (int(w[0]), int(w[1]), int(w[2]))
    return QueueConfig(
        queue=queue,
        paused=raw.get(F_PAUSED) == "1",
        max_in_flight=max_in_flight or None,
        rate_limit=rate,
        priority_policy=policy,
        weights=weights,
        retry_defaults=_parse_retry_defaults(raw),
        max_lost_leases=int(raw[F_MAX_LOST_LEASES]) if raw.get(F_MAX_LOST_LEASES) else None,
        expires_seconds=int(raw[F_EXPIRES_MS]) / 1000 if raw.get(F_EXPIRES_MS) else None,
        priority_rate_limits=_parse_priority_rates(raw),
    )
