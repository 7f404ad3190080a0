"""``app.queues``: live per-queue configuration: flow control (rate limit, max in-flight, pause, priority
policy), retry defaults and the dead-letter threshold for lost leases.

Every change is one call of ``lua/configure.lua`` and takes effect on the next fetch of every worker:
fetch.lua reads the config hash on each call, so there is nothing to restart and no extra round trip per
task. Changes that can let work start (resume, raised limits) also wake idle workers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from jobqueue.broker.client import Client
from jobqueue.broker.redis_io import is_cluster, run_script, translate_errors
from jobqueue.broker.scripts import ScriptCall
from jobqueue.errors import ValidationError
from jobqueue.flow_control import (
    PriorityPolicy,
    QueueConfig,
    RateForms,
    RateLimit,
    RetryBackoffOptions,
    RetryDefaults,
    make_rate_limit,
    make_retry_defaults,
    validate_max_in_flight,
    validate_max_lost_leases,
    validate_policy,
    validate_queue_expires,
)
from jobqueue.keys import QueueKeys
from jobqueue.models import Priority, parse_priority
from jobqueue.queue_config_hash import (
    F_EXPIRES_MS,
    F_MAX_IN_FLIGHT,
    F_MAX_LOST_LEASES,
    F_PAUSED,
    F_POLICY,
    F_RATE_ENABLED,
    F_WEIGHTED_CURSOR,
    F_WEIGHTS,
    RATE_FIELDS,
    RETRY_FIELDS,
    parse_config,
    priority_rate_field_names,
    priority_rate_fields,
    rate_limit_fields,
    retry_default_fields,
)
from jobqueue.rate_limit_stats import (
    RateLimitStats,
    compute_rate_stats,
)


def _pairs_to_dict(flat: Sequence[Any]) -> dict[str, str]:
    return {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}


def build_configure(
    keys: QueueKeys,
    *,
    set_fields: Mapping[str, str] | None = None,
    delete_fields: Sequence[str] = (),
    reset_rate: bool = False,
    wake: bool = False,
    rate_key: str | None = None,
) -> ScriptCall:
    """The configure script call: delete then set config fields, optionally reset the rate-limit state
    (the queue's, or ``rate_key``: a priority level's) and wake idle workers, all atomically."""
    pairs: list[str] = []
    for field, value in (set_fields or {}).items():
        pairs += [field, value]
    return ScriptCall(
        "configure",
        (keys.config, rate_key or keys.rate, keys.wake),
        ("1" if reset_rate else "0", "1" if wake else "0", len(delete_fields), *delete_fields, *pairs),
    )


class QueueAdmin:
    """Flow-control administration of queues (``app.queues``). Thread-safe like the Client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def _configure(self, queue: str, **options: Any) -> QueueConfig:
        keys = self.client.queue_keys(queue)
        with translate_errors():
            # A queue configured before any task exists must still be visible to the scheduler and API.
            self.client.redis.sadd(self.client.global_keys.queues, queue)
        flat = run_script(self.client.redis, build_configure(keys, **options))
        return parse_config(queue, _pairs_to_dict(flat))

    # -- rate limit ------------------------------------------------------------------------------------

    def set_rate_limit(
        self,
        queue: str,
        *,
        max_tasks_per_second: int | None = None,
        max_tasks_per_minute: int | None = None,
        max_tasks_per_hour: int | None = None,
        limit: int | None = None,
        period: float | dt.timedelta | None = None,
        burst: int = 1,
        enabled: bool = True,
    ) -> RateLimit:
        """Limit task starts of ``queue`` across all workers, e.g. ``max_tasks_per_minute=100, burst=20``
        (or ``limit=5, period=10`` seconds). ``burst`` starts may happen back to back, then one per
        period/limit. Takes effect on the next fetch of every worker; starts already made still count.

        With no rate given, ``enabled`` switches an existing limit off or on without forgetting it.
        """
        no_rate = all(
            v is None for v in (max_tasks_per_second, max_tasks_per_minute, max_tasks_per_hour, limit, period)
        )
        if no_rate:
            if not isinstance(enabled, bool):
                raise ValidationError("enabled", "must be True or False")
            if self.get_rate_limit(queue) is None:
                raise ValidationError("rate_limit", f"queue {queue!r} has no rate limit to switch")
            cfg = self._configure(queue, set_fields={F_RATE_ENABLED: "1" if enabled else "0"}, wake=True)
        else:
            rate = make_rate_limit(
                max_tasks_per_second=max_tasks_per_second,
                max_tasks_per_minute=max_tasks_per_minute,
                max_tasks_per_hour=max_tasks_per_hour,
                limit=limit,
                period=period,
                burst=burst,
                enabled=enabled,
            )
            cfg = self._configure(queue, set_fields=rate_limit_fields(rate), wake=True)
        assert cfg.rate_limit is not None  # just written by the script
        return cfg.rate_limit

    def get_rate_limit(self, queue: str) -> RateLimit | None:
        """The queue's rate limit (also when switched off: see ``enabled``), or None."""
        return self.get_config(queue).rate_limit

    def remove_rate_limit(self, queue: str) -> None:
        """Remove the rate limit and its state entirely."""
        self._configure(queue, delete_fields=RATE_FIELDS, reset_rate=True, wake=True)

    def reset_rate_limit(self, queue: str) -> None:
        """Forget the starts counted so far: the full burst is available again at once."""
        self._configure(queue, reset_rate=True, wake=True)

    def rate_limit_stats(self, queue: str) -> RateLimitStats:
        """Current count, remaining capacity, burst used and wait time, on the Redis clock."""
        keys = self.client.queue_keys(queue)
        with translate_errors():
            # One MULTI so config, state and clock are read at the same instant. Not on Redis Cluster: its
            # transactions route every command by its key and the keyless TIME has none (the operator's
            # autoscaler failed there on every reconcile); there TIME comes from whichever primary
            # redis-py picks, in the same round trip (node clocks differ by their NTP skew, milliseconds).
            pipe = self.client.redis.pipeline(transaction=not is_cluster(self.client.redis))
            pipe.hgetall(keys.config)
            pipe.hgetall(keys.rate)
            pipe.execute_command("TIME")  # not pipe.time(): a cluster pipeline refuses that method
            raw, state, (seconds, micros) = pipe.execute()
        config = parse_config(queue, raw)
        return compute_rate_stats(queue, config.rate_limit, state, seconds * 1000 + micros / 1000)

    def set_priority_rate_limit(
        self, queue: str, priority: Priority | str, **rate: Unpack[RateForms]
    ) -> RateLimit:
        """Limit the starts of one priority level of ``queue``, beside the queue's own limit (a start
        counts against both), stated like ``set_rate_limit`` (e.g. ``max_tasks_per_second=5, burst=2``).
        A level at its limit is passed over like an empty one: lower levels keep starting. A queue with
        any such limit does no enqueue hand-off."""
        level = parse_priority(priority)
        rate_limit = make_rate_limit(**rate)
        cfg = self._configure(queue, set_fields=priority_rate_fields(level, rate_limit), wake=True)
        return cfg.priority_rate_limits[level]

    def remove_priority_rate_limit(self, queue: str, priority: Priority | str) -> None:
        """Remove one priority level's own limit and its state."""
        level = parse_priority(priority)
        keys = self.client.queue_keys(queue)
        self._configure(
            queue,
            delete_fields=priority_rate_field_names(level),
            reset_rate=True,
            rate_key=keys.priority_rate(level.value),
            wake=True,
        )

    # -- concurrency, pause, priorities ----------------------------------------------------------------

    def set_max_in_flight(self, queue: str, max_in_flight: int | None) -> QueueConfig:
        """At most this many tasks of ``queue`` run at once across all workers (None or 0: no limit)."""
        value = validate_max_in_flight(max_in_flight)
        if value is None:
            return self._configure(queue, delete_fields=(F_MAX_IN_FLIGHT,), wake=True)
        return self._configure(queue, set_fields={F_MAX_IN_FLIGHT: str(value)}, wake=True)

    def pause(self, queue: str) -> QueueConfig:
        """Hand out nothing from ``queue`` (running tasks finish; enqueue keeps working)."""
        return self._configure(queue, set_fields={F_PAUSED: "1"})

    def resume(self, queue: str) -> QueueConfig:
        """Undo pause; idle workers are woken at once."""
        return self._configure(queue, delete_fields=(F_PAUSED,), wake=True)

    def is_paused(self, queue: str) -> bool:
        """Whether the queue is paused."""
        return self.get_config(queue).paused

    def set_priority_policy(
        self, queue: str, policy: PriorityPolicy | str, weights: Sequence[int] | None = None
    ) -> QueueConfig:
        """'strict' (default: high before medium before low) or 'weighted' with weights (high, medium,
        low), default (6, 3, 1): out of every 10 starts with all levels waiting, 6 high, 3 medium, 1 low."""
        parsed, chosen = validate_policy(policy, weights)
        if chosen is None:
            return self._configure(
                queue,
                set_fields={F_POLICY: parsed.value},
                delete_fields=(F_WEIGHTS, F_WEIGHTED_CURSOR),
            )
        return self._configure(
            queue,
            set_fields={F_POLICY: parsed.value, F_WEIGHTS: json.dumps(list(chosen))},
            delete_fields=(F_WEIGHTED_CURSOR,),
        )

    # -- retry defaults and dead letters ----------------------------------------------------------------

    def set_retry_defaults(
        self,
        queue: str,
        *,
        max_retries: int,
        **options: Unpack[RetryBackoffOptions],
    ) -> RetryDefaults:
        """Retry policy for tasks of ``queue`` that set none of their own: ``max_retries`` applies to
        tasks enqueued without ``max_retries``, the backoff to tasks whose definition gives no
        ``retry_backoff`` / ``retry_base`` / ``retry_max`` / ``retry_jitter``. Read by the fail script
        when a task fails, so it applies to tasks already waiting too."""
        defaults = make_retry_defaults(max_retries=max_retries, **options)
        cfg = self._configure(queue, set_fields=retry_default_fields(defaults))
        assert cfg.retry_defaults is not None  # just written by the script
        return cfg.retry_defaults

    def remove_retry_defaults(self, queue: str) -> QueueConfig:
        """Back to the product defaults (the worker's JOBQUEUE_DEFAULT_MAX_RETRIES retries, 3 unless set;
        exponential from 1 s, capped at 300 s, jittered)."""
        return self._configure(queue, delete_fields=RETRY_FIELDS)

    def set_max_lost_leases(self, queue: str, max_lost_leases: int | None) -> QueueConfig:
        """A task of ``queue`` whose lease is lost more than this many times (its worker died or stalled
        each time) is dead-lettered as poison; None restores the process-wide JOBQUEUE_MAX_LOST_LEASES."""
        value = validate_max_lost_leases(max_lost_leases)
        if value is None:
            return self._configure(queue, delete_fields=(F_MAX_LOST_LEASES,))
        return self._configure(queue, set_fields={F_MAX_LOST_LEASES: str(value)})

    def set_expires(self, queue: str, seconds: float | None) -> QueueConfig:
        """A task of ``queue`` not started ``seconds`` after its enqueue is never run: the fetch that
        reaches it ends it EXPIRED (a task's own ``expires`` wins); None removes the queue's expiry."""
        value = validate_queue_expires(seconds)
        if value is None:
            return self._configure(queue, delete_fields=(F_EXPIRES_MS,))
        return self._configure(queue, set_fields={F_EXPIRES_MS: str(value)})

    def get_config(self, queue: str) -> QueueConfig:
        """The queue's live configuration."""
        keys: QueueKeys = self.client.queue_keys(queue)
        with translate_errors():
            raw = self.client.redis.hgetall(keys.config)
        return parse_config(queue, raw)


class AsyncQueueAdmin:
    """The asyncio twin of QueueAdmin (runs the sync implementation in a thread, like AsyncClient's
    administrative calls)."""

    def __init__(self, admin: QueueAdmin) -> None:
        self._admin = admin

    async def set_rate_limit(self, queue: str, **options: Any) -> RateLimit:
        """See QueueAdmin.set_rate_limit."""
        return await asyncio.to_thread(lambda: self._admin.set_rate_limit(queue, **options))

    async def set_priority_rate_limit(
        self, queue: str, priority: Priority | str, **rate: Unpack[RateForms]
    ) -> RateLimit:
        """See QueueAdmin.set_priority_rate_limit."""
        admin = self._admin
        return await asyncio.to_thread(lambda: admin.set_priority_rate_limit(queue, priority, **rate))

    async def remove_priority_rate_limit(self, queue: str, priority: Priority | str) -> None:
        """See QueueAdmin.remove_priority_rate_limit."""
        await asyncio.to_thread(self._admin.remove_priority_rate_limit, queue, priority)

    async def get_rate_limit(self, queue: str) -> RateLimit | None:
        """See QueueAdmin.get_rate_limit."""
        return await asyncio.to_thread(self._admin.get_rate_limit, queue)

    async def reset_rate_limit(self, queue: str) -> None:
        """See QueueAdmin.reset_rate_limit."""
        await asyncio.to_thread(self._admin.reset_rate_limit, queue)

    async def rate_limit_stats(self, queue: str) -> RateLimitStats:
        """See QueueAdmin.rate_limit_stats."""
        return await asyncio.to_thread(self._admin.rate_limit_stats, queue)

    async def set_max_in_flight(self, queue: str, max_in_flight: int | None) -> QueueConfig:
        """See QueueAdmin.set_max_in_flight."""
        return await asyncio.to_thread(self._admin.set_max_in_flight, queue, max_in_flight)

    async def pause(self, queue: str) -> QueueConfig:
        """See QueueAdmin.pause."""
        return await asyncio.to_thread(self._admin.pause, queue)

    async def resume(self, queue: str) -> QueueConfig:
        """See QueueAdmin.resume."""
        return await asyncio.to_thread(self._admin.resume, queue)

    async def set_priority_policy(
        self, queue: str, policy: PriorityPolicy | str, weights: Sequence[int] | None = None
    ) -> QueueConfig:
        """See QueueAdmin.set_priority_policy."""
        return await asyncio.to_thread(self._admin.set_priority_policy, queue, policy, weights)

    async def set_retry_defaults(
        self, queue: str, *, max_retries: int, **options: Unpack[RetryBackoffOptions]
    ) -> RetryDefaults:
        """See QueueAdmin.set_retry_defaults."""
        return await asyncio.to_thread(
            lambda: self._admin.set_retry_defaults(queue, max_retries=max_retries, **options)
        )

    async def remove_retry_defaults(self, queue: str) -> QueueConfig:
        """See QueueAdmin.remove_retry_defaults."""
        return await asyncio.to_thread(self._admin.remove_retry_defaults, queue)

    async def set_max_lost_leases(self, queue: str, max_lost_leases: int | None) -> QueueConfig:
        """See QueueAdmin.set_max_lost_leases."""
        return await asyncio.to_thread(self._admin.set_max_lost_leases, queue, max_lost_leases)

    async def get_config(self, queue: str) -> QueueConfig:
        """See QueueAdmin.get_config."""
        return await asyncio.to_thread(self._admin.get_config, queue)
