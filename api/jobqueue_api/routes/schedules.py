"""/api/v1/schedules: recurring (cron) schedules with their last and next fire times."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from jobqueue.broker.aio import AsyncClient
from jobqueue.keys import QUEUE_NAME_PATTERN
from jobqueue.schedules.model import ScheduleInfo
from jobqueue.schedules.registry import ScheduleRegistry
from jobqueue_api.auth import require
from jobqueue_api.deps import get_client
from jobqueue_api.settings import Scope

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])
Client = Annotated[AsyncClient, Depends(get_client)]
# The registry's own name rule (jobqueue.schedules.model.SCHEDULE_NAME), so a bad name is a 422 naming it
# on every route and the schema tells clients what a name may be.
NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}$"
Name = Annotated[str, Path(pattern=NAME_PATTERN)]


class ScheduleBody(BaseModel):
    """A schedule definition (see docs/schedules.md)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    cron: str = Field(min_length=1, max_length=200)
    task: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str = Field(default="default", pattern=QUEUE_NAME_PATTERN)
    priority: Literal["high", "medium", "low"] = "medium"
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    starting_deadline_seconds: float | None = Field(default=None, gt=0, lt=10**9, strict=True)


def schedule_json(info: ScheduleInfo) -> dict[str, Any]:
    """JSON shape of a schedule with its run state."""
    return {
        **json.loads(info.schedule.to_json()),
        "paused": info.paused,
        "next_fire_at": info.next_fire_at.isoformat() if info.next_fire_at else None,
        "last_fire_at": info.last_fire_at.isoformat() if info.last_fire_at else None,
        "last_task_id": info.last_task_id,
        "fired": info.fired,
        "missed": info.missed,
        "skipped": info.skipped,
    }


def _registry(client: AsyncClient) -> ScheduleRegistry:
    return ScheduleRegistry(client.sync)


@router.post("", status_code=201, dependencies=[Depends(require(Scope.ADMIN))])
async def create(body: ScheduleBody, client: Client) -> dict[str, Any]:
    """Create or replace a schedule."""
    options = body.model_dump(exclude={"name"})
    info = await asyncio.to_thread(lambda: _registry(client).register(body.name, **options))
    return schedule_json(info)


@router.get("", dependencies=[Depends(require(Scope.READ))])
async def list_schedules(client: Client) -> list[dict[str, Any]]:
    """Every schedule."""
    return [schedule_json(i) for i in await asyncio.to_thread(_registry(client).list)]


@router.get("/{name}", dependencies=[Depends(require(Scope.READ))])
async def get_schedule(name: Name, client: Client) -> dict[str, Any]:
    """One schedule."""
    return schedule_json(await asyncio.to_thread(_registry(client).get, name))


@router.post("/{name}/pause", dependencies=[Depends(require(Scope.ADMIN))])
async def pause(name: Name, client: Client) -> dict[str, Any]:
    """Stop firing."""
    await asyncio.to_thread(_registry(client).pause, name)
    return schedule_json(await asyncio.to_thread(_registry(client).get, name))


@router.post("/{name}/resume", dependencies=[Depends(require(Scope.ADMIN))])
async def resume(name: Name, client: Client) -> dict[str, Any]:
    """Fire again from the next fire time."""
    await asyncio.to_thread(_registry(client).resume, name)
    return schedule_json(await asyncio.to_thread(_registry(client).get, name))


@router.delete("/{name}", status_code=204, dependencies=[Depends(require(Scope.ADMIN))])
async def delete(name: Name, client: Client) -> None:
    """Remove the schedule (tasks it created are untouched)."""
    await asyncio.to_thread(_registry(client).delete, name)
