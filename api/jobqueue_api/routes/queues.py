"""/api/v1/queues: live depth per priority, in-flight, dead letters and oldest task age."""

from __future__ import annotations

import bisect
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.queue_overview import read_queue_states_async
from jobqueue.keys import QUEUE_NAME_PATTERN
from jobqueue_api.auth import require
from jobqueue_api.deps import get_client
from jobqueue_api.schemas import QueueInfo
from jobqueue_api.settings import Scope

router = APIRouter(prefix="/api/v1/queues", tags=["queues"], dependencies=[Depends(require(Scope.READ))])
Client = Annotated[AsyncClient, Depends(get_client)]
QueueName = Annotated[str, Path(pattern=QUEUE_NAME_PATTERN)]
# A page of 1,000 queues reads in about the 200 ms a page may take at 10,000 queues (docs/benchmarks.md).
DEFAULT_PAGE = 100
MAX_PAGE = 1000


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
async def list_queues(
    client: Client,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    after: Annotated[str | None, Query(pattern=QUEUE_NAME_PATTERN)] = None,
) -> list[QueueInfo]:
    """One page of the known queues in name order: those after ``after`` (the last name of the previous
    page), at most ``limit``. ``X-Total-Count`` is the number of queues; ``X-Next-Cursor`` (absent on the
    last page) is the ``after`` of the next page, also given as a ``Link: <...>; rel="next"``."""
    names = await client.known_queues()
    start = bisect.bisect_right(names, after) if after is not None else 0
    page = names[start : start + limit]
    response.headers["X-Total-Count"] = str(len(names))
    if start + limit < len(names):
        response.headers["X-Next-Cursor"] = page[-1]
        response.headers["Link"] = f'</api/v1/queues?after={page[-1]}&limit={limit}>; rel="next"'
    # One batched read for the whole page (two round trips), not three or four per queue.
    return [
        QueueInfo(
            name=state.depth.queue,
            ready=state.depth.ready,
            delayed=state.depth.delayed,
            in_flight=state.depth.in_flight,
            dead_letters=state.depth.dead,
            oldest_ready_age_seconds=state.oldest_ready_age,
        )
        for state in await read_queue_states_async(client, page)
    ]


@router.get("/{queue}")
async def get_queue(queue: QueueName, client: Client) -> QueueInfo:
    """One queue."""
    return await queue_info(client, queue)
