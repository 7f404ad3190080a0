"""JobQueue: the QueueAdmin calls a spec asks for, and the status a queue's live counts give (pure but
for :func:`apply_queue_spec`, which only calls QueueAdmin)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.models import Priority
from jobqueue_operator.conditions import Condition, flag, merge_conditions, ready
from jobqueue_operator.redis_state import QueueStatus
from jobqueue_operator.spec import JobQueueSpec, RateLimitSpec


def retry_defaults_of(spec: JobQueueSpec) -> dict[str, Any]:
    """The keyword arguments of ``QueueAdmin.set_retry_defaults`` that ``spec.retries`` asks for."""
    retries = spec.retries
    return {
        "max_retries": retries.max_retries,
        "backoff": retries.backoff.policy_name,
        "base_seconds": retries.backoff.initial_seconds,
        "max_seconds": retries.backoff.max_seconds,
        "jitter": retries.backoff.jitter,
    }


def apply_queue_spec(admin: QueueAdmin, queue: str, spec: JobQueueSpec) -> None:
    """Write the spec's flow control to the queue's configuration in Redis (each call is one script)."""
    weights = spec.priority.weights
    admin.set_priority_policy(
        queue,
        spec.priority.policy.lower(),
        None if weights is None else (weights.high, weights.medium, weights.low),
    )
    if spec.rate_limit is not None:
        rate = spec.rate_limit
        admin.set_rate_limit(queue, limit=rate.tasks, period=rate.period_seconds, burst=rate.burst)
    elif admin.get_rate_limit(queue) is not None:
        admin.remove_rate_limit(queue)
    levels_limited = admin.get_config(queue).priority_rate_limits
    for level in Priority:
        level_rate: RateLimitSpec | None = getattr(spec.priority_rate_limits, level.value)
        if level_rate is not None:
            admin.set_priority_rate_limit(
                queue, level, limit=level_rate.tasks, period=level_rate.period_seconds, burst=level_rate.burst
            )
        elif level in levels_limited:
            admin.remove_priority_rate_limit(queue, level)
    admin.set_max_in_flight(queue, spec.max_in_flight or None)
    # Retry defaults and the lost-lease threshold: read by fail.lua / recover.lua when a task fails or
    # loses its lease, so they apply to the queue's waiting tasks too.
    admin.set_retry_defaults(queue, **retry_defaults_of(spec))
    admin.set_max_lost_leases(queue, spec.dead_letter.max_lost_leases)
    if spec.paused:
        admin.pause(queue)
    else:
        admin.resume(queue)


def configured_status(
    conditions: Sequence[Mapping[str, Any]] | None, generation: int, now: dt.datetime
) -> dict[str, Any]:
    """Status after the spec of ``generation`` was written to Redis."""
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(
            conditions, [ready(True, "Configured", "queue configuration written to Redis")], generation, now
        ),
    }


def invalid_status(
    conditions: Sequence[Mapping[str, Any]] | None, generation: int, now: dt.datetime, why: str
) -> dict[str, Any]:
    """Status of a resource whose spec cannot be applied; retrying will not help until it is edited."""
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(conditions, [ready(False, "InvalidSpec", why)], generation, now),
    }


def live_status(
    spec: JobQueueSpec,
    live: QueueStatus,
    conditions: Sequence[Mapping[str, Any]] | None,
    generation: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """Depth per priority, delayed, in-flight, dead letters, oldest age, and the Paused and
    DeadLetterAlert conditions."""
    depth = live.depth
    threshold = spec.dead_letter.alert_threshold
    alert = threshold is not None and depth.dead >= threshold
    updates: list[Condition] = [
        flag("Paused", spec.paused, "PausedBySpec" if spec.paused else "Running"),
        flag(
            "DeadLetterAlert",
            alert,
            "ThresholdReached" if alert else "BelowThreshold",
            f"{depth.dead} dead-lettered task(s), alert threshold {threshold}" if threshold else "",
        ),
    ]
    return {
        "depth": dict(depth.ready),
        "delayed": depth.delayed,
        "inFlight": depth.in_flight,
        "deadLetterSize": depth.dead,
        "oldestTaskAgeSeconds": round(live.oldest_age or 0.0, 3),
        "conditions": merge_conditions(conditions, updates, generation, now),
    }
