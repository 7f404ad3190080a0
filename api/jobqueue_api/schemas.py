"""Request and response bodies. Field constraints give bad requests a 422 that names the field."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from jobqueue.broker.enqueue import MAX_DELAY_SECONDS
from jobqueue.keys import QUEUE_NAME_PATTERN

QueueName = Field(default="default", pattern=QUEUE_NAME_PATTERN)


class SubmitTask(BaseModel):
    """One task to enqueue."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str = QueueName
    priority: Literal["high", "medium", "low"] = "medium"
    # strict: "10" for a number, or true for 1, is a client bug to report, not to guess at.
    countdown: float | None = Field(default=None, ge=0, le=MAX_DELAY_SECONDS, strict=True)
    eta: dt.datetime | None = None
    # null: the queue's retry default (PUT /api/v1/queues/{queue}/retry-defaults) applies when it fails.
    max_retries: int | None = Field(default=None, ge=0, le=1000, strict=True)
    timeout: float | None = Field(default=None, gt=0, le=7 * 86400, strict=True)
    soft_timeout: float | None = Field(default=None, gt=0, le=7 * 86400, strict=True)
    result_ttl: int | None = Field(default=None, gt=0, le=365 * 86400, strict=True)
    unique: bool = Field(default=False, strict=True)
    unique_key: str | None = Field(default=None, min_length=1, max_length=500)
    unique_ttl: int | None = Field(default=None, gt=0, le=365 * 86400, strict=True)
    unique_rerun: bool = Field(default=False, strict=True)
    depends_on: list[str] = Field(default_factory=list, max_length=1000)
    # Seconds from now, or an ISO 8601 time; one already past is a 422 naming ``expires`` (make_request).
    expires: Annotated[float, Field(strict=True, allow_inf_nan=False)] | dt.datetime | None = None


class SubmitBatch(BaseModel):
    """Many tasks enqueued in one round trip; all are validated before any is written."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[SubmitTask] = Field(min_length=1, max_length=10_000)


class Submitted(BaseModel):
    """Ids of enqueued tasks; ``deduplicated[i]`` is true when ids[i] is an earlier unique task's id."""

    ids: list[str]
    deduplicated: list[bool] = Field(default_factory=list)
    # The id each enqueue was given: ids[i] unless deduplicated[i], and then the id whose
    # GET /api/v1/tasks/{id}/duplicate names the task it was folded into.
    enqueue_ids: list[str] = Field(default_factory=list)


class CancelRequest(BaseModel):
    """How to cancel."""

    model_config = ConfigDict(extra="forbid")

    reason: Literal[
        "user_requested",
        "timeout",
        "dependency_failed",
        "worker_shutdown",
        "system_error",
        "rate_limit_exceeded",
        "other",
    ] = "user_requested"
    force: bool = Field(default=False, strict=True)


class CancelResult(BaseModel):
    """Outcome of a cancel: cancelled (was waiting), requested (running), finished (already final)."""

    id: str
    outcome: str


class ReplayRequest(BaseModel):
    """Replay options."""

    model_config = ConfigDict(extra="forbid")

    reset_retries: bool = Field(default=False, strict=True)


class ExtendResult(BaseModel):
    """New result lifetime."""

    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int = Field(gt=0, le=365 * 86400, strict=True)


class QueueInfo(BaseModel):
    """Live state of a queue."""

    name: str
    ready: dict[str, int]
    delayed: int
    in_flight: int
    dead_letters: int
    oldest_ready_age_seconds: float | None


class DeadLetterStatsBody(BaseModel):
    """Dead letter counts."""

    queue: str
    total: int
    by_task: dict[str, int]
    by_reason: dict[str, int]
    alert: bool | None = None


class QueueStats(BaseModel):
    """Lifetime counters of a queue (never reset), read at ``at`` (unix seconds, Redis clock)."""

    queue: str
    counters: dict[str, int]
    at: float
