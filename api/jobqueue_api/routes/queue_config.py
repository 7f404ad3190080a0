"""/api/v1/queues/{queue}/...: live queue configuration: flow control (rate limit, max in-flight, pause,
priority policy), retry defaults and the lost-lease dead-letter threshold."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.flow_control import MAX_QUEUE_EXPIRES_SECONDS, QueueConfig
from jobqueue.keys import QUEUE_NAME_PATTERN
from jobqueue_api.auth import require
from jobqueue_api.deps import get_client
from jobqueue_api.settings import Scope

router = APIRouter(prefix="/api/v1/queues/{queue}", tags=["queues"])
Client = Annotated[AsyncClient, Depends(get_client)]
QueueName = Annotated[str, Path(pattern=QUEUE_NAME_PATTERN)]


class RateLimitBody(BaseModel):
    """``limit`` task starts per ``period_seconds`` across all workers, ``burst`` back to back."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(gt=0, le=10_000_000, strict=True)
    # The broker's own bounds (1 ms .. ) stated here, so a 422 names period_seconds, not its "period".
    period_seconds: float = Field(ge=0.001, le=86_400, strict=True)
    burst: int = Field(default=1, ge=1, le=1_000_000, strict=True)
    enabled: bool = Field(default=True, strict=True)


class PriorityRateLimitBody(BaseModel):
    """One priority level's own limit: ``limit`` starts of that level per ``period_seconds``, beside the
    queue's own limit (a start counts against both)."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(gt=0, le=10_000_000, strict=True)
    period_seconds: float = Field(ge=0.001, le=86_400, strict=True)
    burst: int = Field(default=1, ge=1, le=1_000_000, strict=True)


PriorityLevel = Annotated[Literal["high", "medium", "low"], Path()]


class MaxInFlightBody(BaseModel):
    """At most this many running tasks across all workers (null: no limit)."""

    model_config = ConfigDict(extra="forbid")

    max_in_flight: int | None = Field(default=None, ge=1, le=10_000_000, strict=True)


class PriorityPolicyBody(BaseModel):
    """'strict' or 'weighted' with weights [high, medium, low]."""

    model_config = ConfigDict(extra="forbid")

    policy: Literal["strict", "weighted"] = "strict"
    weights: list[StrictInt] | None = Field(default=None, min_length=3, max_length=3)


class RetryDefaultsBody(BaseModel):
    """Retries for tasks that set no policy of their own (resolved when a task fails)."""

    model_config = ConfigDict(extra="forbid")

    max_retries: int = Field(ge=0, le=1000, strict=True)
    backoff: Literal["exponential", "linear", "fibonacci", "constant"] = "exponential"
    base_seconds: float = Field(default=1.0, ge=0, le=7 * 86_400, strict=True)
    max_seconds: float = Field(default=300.0, ge=0, le=7 * 86_400, strict=True)
    jitter: bool = Field(default=True, strict=True)


class MaxLostLeasesBody(BaseModel):
    """Dead-letter a task whose lease was lost more than this many times (null: the process default)."""

    model_config = ConfigDict(extra="forbid")

    max_lost_leases: int | None = Field(default=None, ge=0, le=1000, strict=True)


class ExpiresBody(BaseModel):
    """Tasks not started this many seconds after their enqueue end EXPIRED (null: no queue expiry)."""

    model_config = ConfigDict(extra="forbid")

    expires: float | None = Field(
        default=None, gt=0, le=MAX_QUEUE_EXPIRES_SECONDS, strict=True, allow_inf_nan=False
    )


def config_json(config: QueueConfig) -> dict[str, Any]:
    """JSON shape of a queue's configuration."""
    return {
        "queue": config.queue,
        "paused": config.paused,
        "max_in_flight": config.max_in_flight,
        "rate_limit": dataclasses.asdict(config.rate_limit) if config.rate_limit else None,
        "priority_rate_limits": {
            level.value: dataclasses.asdict(rate) for level, rate in config.priority_rate_limits.items()
        },
        "priority_policy": config.priority_policy.value,
        "weights": list(config.weights) if config.weights else None,
        "retry_defaults": dataclasses.asdict(config.retry_defaults) if config.retry_defaults else None,
        "max_lost_leases": config.max_lost_leases,
        "expires": config.expires_seconds,
    }


def _admin(client: AsyncClient) -> QueueAdmin:
    return QueueAdmin(client.sync)


@router.get("/config", dependencies=[Depends(require(Scope.READ))])
async def get_config(queue: QueueName, client: Client) -> dict[str, Any]:
    """Pause state, max in-flight, rate limit, priority policy, retry defaults, max lost leases."""
    return config_json(await asyncio.to_thread(_admin(client).get_config, queue))


@router.put("/rate-limit", dependencies=[Depends(require(Scope.ADMIN))])
async def put_rate_limit(queue: QueueName, body: RateLimitBody, client: Client) -> dict[str, Any]:
    """Set the rate limit; running workers apply it at their next fetch."""
    rate = await asyncio.to_thread(
        lambda: _admin(client).set_rate_limit(
            queue, limit=body.limit, period=body.period_seconds, burst=body.burst, enabled=body.enabled
        )
    )
    return dataclasses.asdict(rate)


@router.delete("/rate-limit", status_code=204, dependencies=[Depends(require(Scope.ADMIN))])
async def delete_rate_limit(queue: QueueName, client: Client) -> None:
    """Remove the rate limit."""
    await asyncio.to_thread(_admin(client).remove_rate_limit, queue)


@router.get("/rate-limit/stats", dependencies=[Depends(require(Scope.READ))])
async def rate_limit_stats(queue: QueueName, client: Client) -> dict[str, Any]:
    """Current count, remaining capacity, burst used, wait time."""
    return dataclasses.asdict(await asyncio.to_thread(_admin(client).rate_limit_stats, queue))


@router.post("/rate-limit/reset", dependencies=[Depends(require(Scope.ADMIN))])
async def reset_rate_limit(queue: QueueName, client: Client) -> dict[str, str]:
    """Forget the starts counted so far."""
    await asyncio.to_thread(_admin(client).reset_rate_limit, queue)
    return {"queue": queue, "status": "reset"}


@router.put("/rate-limit/{priority}", dependencies=[Depends(require(Scope.ADMIN))])
async def put_priority_rate_limit(
    queue: QueueName, priority: PriorityLevel, body: PriorityRateLimitBody, client: Client
) -> dict[str, Any]:
    """Set one priority level's own limit; running workers apply it at their next fetch."""
    rate = await asyncio.to_thread(
        lambda: _admin(client).set_priority_rate_limit(
            queue, priority, limit=body.limit, period=body.period_seconds, burst=body.burst
        )
    )
    return {"priority": priority, **dataclasses.asdict(rate)}


@router.delete("/rate-limit/{priority}", status_code=204, dependencies=[Depends(require(Scope.ADMIN))])
async def delete_priority_rate_limit(queue: QueueName, priority: PriorityLevel, client: Client) -> None:
    """Remove one priority level's own limit (the queue's own limit stays)."""
    await asyncio.to_thread(_admin(client).remove_priority_rate_limit, queue, priority)


@router.put("/max-in-flight", dependencies=[Depends(require(Scope.ADMIN))])
async def put_max_in_flight(queue: QueueName, body: MaxInFlightBody, client: Client) -> dict[str, Any]:
    """Set or clear the concurrency limit."""
    return config_json(await asyncio.to_thread(_admin(client).set_max_in_flight, queue, body.max_in_flight))


@router.post("/pause", dependencies=[Depends(require(Scope.ADMIN))])
async def pause(queue: QueueName, client: Client) -> dict[str, Any]:
    """Hand out nothing from the queue (enqueue keeps working)."""
    return config_json(await asyncio.to_thread(_admin(client).pause, queue))


@router.post("/resume", dependencies=[Depends(require(Scope.ADMIN))])
async def resume(queue: QueueName, client: Client) -> dict[str, Any]:
    """Resume a paused queue; idle workers start at once."""
    return config_json(await asyncio.to_thread(_admin(client).resume, queue))


@router.put("/priority-policy", dependencies=[Depends(require(Scope.ADMIN))])
async def put_priority_policy(queue: QueueName, body: PriorityPolicyBody, client: Client) -> dict[str, Any]:
    """Strict or weighted priorities."""
    return config_json(
        await asyncio.to_thread(_admin(client).set_priority_policy, queue, body.policy, body.weights)
    )


@router.put("/retry-defaults", dependencies=[Depends(require(Scope.ADMIN))])
async def put_retry_defaults(queue: QueueName, body: RetryDefaultsBody, client: Client) -> dict[str, Any]:
    """Set the retry policy of tasks that have none of their own; applies to their next failure."""
    defaults = await asyncio.to_thread(lambda: _admin(client).set_retry_defaults(queue, **body.model_dump()))
    return dataclasses.asdict(defaults)


@router.delete("/retry-defaults", dependencies=[Depends(require(Scope.ADMIN))])
async def delete_retry_defaults(queue: QueueName, client: Client) -> dict[str, Any]:
    """Back to the product's retry defaults (JOBQUEUE_DEFAULT_MAX_RETRIES; exponential backoff)."""
    return config_json(await asyncio.to_thread(_admin(client).remove_retry_defaults, queue))


@router.put("/max-lost-leases", dependencies=[Depends(require(Scope.ADMIN))])
async def put_max_lost_leases(queue: QueueName, body: MaxLostLeasesBody, client: Client) -> dict[str, Any]:
    """Set or clear the queue's poison threshold for lost leases."""
    return config_json(
        await asyncio.to_thread(_admin(client).set_max_lost_leases, queue, body.max_lost_leases)
    )


@router.put("/expires", dependencies=[Depends(require(Scope.ADMIN))])
async def put_expires(queue: QueueName, body: ExpiresBody, client: Client) -> dict[str, Any]:
    """Set or clear the queue's expiry: tasks not started that long after their enqueue never run."""
    return config_json(await asyncio.to_thread(_admin(client).set_expires, queue, body.expires))
