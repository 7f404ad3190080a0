"""/api/v1/queues/{queue}/stats: the queue's monotonically increasing counters.

The UI derives throughput and success rate from the difference between two reads, the same way
Prometheus' ``rate()`` does with the ``jobqueue_*_total`` counters, so the API keeps no time series.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.live_state import queue_counters_async
from jobqueue.keys import QUEUE_NAME_PATTERN
from jobqueue_api.auth import require
from jobqueue_api.deps import get_client
from jobqueue_api.schemas import QueueStats
from jobqueue_api.settings import Scope

router = APIRouter(prefix="/api/v1/queues", tags=["queues"], dependencies=[Depends(require(Scope.READ))])
Client = Annotated[AsyncClient, Depends(get_client)]
QueueName = Annotated[str, Path(pattern=QUEUE_NAME_PATTERN)]

# Counters written by the transition scripts; a queue that never saw one reports 0 rather than omitting it.
COUNTER_FIELDS = ("enqueued", "started", "succeeded", "retried", "dead_lettered", "cancelled", "lost_leases")


@router.get("/{queue}/stats")
async def queue_stats(queue: QueueName, client: Client) -> QueueStats:
    """Lifetime counters of a queue and the Redis server time they were read at (unix seconds)."""
    # One round trip; the server clock is used so rates computed by callers share one time base.
    read = await queue_counters_async(client, queue)
    counters = {name: read.count(name) for name in COUNTER_FIELDS}
    return QueueStats(queue=queue, counters=counters, at=read.at)
