"""/api/v1/queues/{queue}/dead-letters: list, stats with alert check, replay, purge."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from jobqueue.broker.aio import AsyncClient
from jobqueue.errors import TaskNotFound
from jobqueue.keys import QUEUE_NAME_PATTERN, queue_of
from jobqueue_api.auth import require
from jobqueue_api.deps import get_client
from jobqueue_api.schemas import DeadLetterStatsBody, ReplayRequest
from jobqueue_api.settings import Scope

router = APIRouter(prefix="/api/v1/queues/{queue}/dead-letters", tags=["dead letters"])
Client = Annotated[AsyncClient, Depends(get_client)]
QueueName = Annotated[str, Path(pattern=QUEUE_NAME_PATTERN)]
TaskId = Annotated[str, Path(pattern=rf"{QUEUE_NAME_PATTERN[:-1]}\.[0-9a-f]{{32}}$")]


@router.get("", dependencies=[Depends(require(Scope.READ))])
async def list_dead_letters(
    queue: QueueName,
    client: Client,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    """Dead letters, newest first."""
    return [r.to_json() for r in await client.list_dead_letters(queue, offset, limit)]


@router.get("/stats", dependencies=[Depends(require(Scope.READ))])
async def stats(
    queue: QueueName, client: Client, alert_threshold: Annotated[int | None, Query(ge=1)] = None
) -> DeadLetterStatsBody:
    """Counts by task name and reason; ``alert`` is true when the total reaches ``alert_threshold``."""
    s = await client.dead_letter_stats(queue)
    alert = None if alert_threshold is None else s.total >= alert_threshold
    return DeadLetterStatsBody(
        queue=queue, total=s.total, by_task=s.by_task, by_reason=s.by_reason, alert=alert
    )


@router.post("/{task_id}/replay", dependencies=[Depends(require(Scope.ADMIN))])
async def replay(queue: QueueName, task_id: TaskId, body: ReplayRequest, client: Client) -> dict[str, str]:
    """Put a dead letter back in its queue."""
    if queue_of(task_id) != queue:
        raise TaskNotFound(task_id)
    await client.replay_dead_letter(task_id, reset_retries=body.reset_retries)
    return {"id": task_id, "status": "QUEUED"}


@router.delete("", dependencies=[Depends(require(Scope.ADMIN))])
async def purge(queue: QueueName, client: Client) -> dict[str, int]:
    """Delete every dead letter of the queue."""
    return {"purged": await client.purge_dead_letters(queue)}
