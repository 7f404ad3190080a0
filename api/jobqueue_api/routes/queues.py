"""/api/v1/queues: live depth per priority, in-flight, dead letters and oldest task age."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from jobqueue.broker.aio import AsyncClient
from jobqueue.keys import QUEUE_NAME_PATTERN
from jobqueue_api.auth import require
from jobqueue_api.deps import get_client
from jobqueue_api.schemas import QueueInfo
from jobqueue_api.settings import Scope

router = APIRouter(prefix="/api/v1/queues", tags=["queues"], dependencies=[Depends(require(Scope.READ))])
Client = Annotated[AsyncClient, Depends(get_client)]
QueueName = Annotated[str, Path(pattern=QUEUE_NAME_PATTERN)]


async def queue_info(client: AsyncClient, name: str) -> QueueInfo:
    """Live state of one queue."""
    depth = await client.queue_depth(name)
    return QueueInfo(
        name=name,
        ready=depth.ready,
        delayed=depth.delayed,
        in_flight=depth.in_flight,
        dead_letters=depth.dead,
        oldest_ready_age_seconds=await client.oldest_ready_age(name),
    )


@router.get("")
async def list_queues(client: Client) -> list[QueueInfo]:
    """Every known queue."""
    return [await queue_info(client, name) for name in await client.known_queues()]


@router.get("/{queue}")
async def get_queue(queue: QueueName, client: Client) -> QueueInfo:
    """One queue."""
    return await queue_info(client, queue)
