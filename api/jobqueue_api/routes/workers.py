"""/api/v1/workers: who is working, on what, and how recently they were heard from."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Response

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.worker_monitor import read_monitor_input_async
from jobqueue.models import WorkerInfo
from jobqueue.worker_monitor import Thresholds, monitor_stats
from jobqueue_api.auth import require
from jobqueue_api.deps import get_client
from jobqueue_api.errors import ApiError
from jobqueue_api.settings import Scope

router = APIRouter(prefix="/api/v1/workers", tags=["workers"], dependencies=[Depends(require(Scope.READ))])
Client = Annotated[AsyncClient, Depends(get_client)]
# Workers per page: a page reads only its workers' records. The default is the maximum so that a caller
# written before paging, which reads one response, still sees a whole fleet of up to 1,000.
MAX_PAGE = 1000
MAX_CURSOR = 8192


def _shape(worker: WorkerInfo, stale_after: float) -> dict[str, Any]:
    return {
        "id": worker.id,
        "status": "DEAD" if worker.heartbeat_age > stale_after else worker.status.value,
        "heartbeat_age_seconds": round(worker.heartbeat_age, 3),
        "host": worker.host,
        "pid": worker.pid,
        "queues": list(worker.queues),
        "concurrency": worker.concurrency,
        "current_tasks": list(worker.in_flight),
        "processed": worker.processed,
    }


@router.get("")
async def list_workers(
    client: Client,
    response: Response,
    stale_after: Annotated[float, Query(gt=0, le=3600)] = 30.0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
    # Worker ids are not length-checked where they are made (JOBQUEUE_WORKER_ID, hostnames): a cap here
    # below the longest id in the registry would refuse the cursor of the page that ends with it.
    after: Annotated[str | None, Query(min_length=1, max_length=MAX_CURSOR)] = None,
) -> list[dict[str, Any]]:
    """One page of workers in id order, with status (ACTIVE / IDLE / DRAINING, or DEAD once the
    heartbeat is stale): those after ``after`` (the last id of the previous page), at most ``limit``.
    ``X-Total-Count`` is the number of registered workers; ``X-Next-Cursor`` (absent on the last page) is
    the ``after`` of the next page, also given as a ``Link: <...>; rel="next"``."""
    page, total, cursor = await client.worker_page(after, limit)
    response.headers["X-Total-Count"] = str(total)
    if cursor is not None:
        response.headers["X-Next-Cursor"] = cursor
        response.headers["Link"] = f'</api/v1/workers?after={quote(cursor)}&limit={limit}>; rel="next"'
    return [_shape(w, stale_after) for w in page]


@router.get("/stats")
async def worker_stats(
    client: Client, stale_after: Annotated[float, Query(gt=0, le=3600)] = 30.0
) -> dict[str, Any]:
    """Counts by status and utilization (busy slots / total slots of live workers)."""
    workers = [_shape(w, stale_after) for w in await client.list_workers()]
    live = [w for w in workers if w["status"] != "DEAD"]
    slots = sum(w["concurrency"] for w in live)
    busy = sum(len(w["current_tasks"]) for w in live)
    counts: dict[str, int] = {}
    for w in workers:
        counts[w["status"]] = counts.get(w["status"], 0) + 1
    return {"by_status": counts, "slots": slots, "busy": busy, "utilization": busy / slots if slots else 0.0}


@router.get("/monitor/stats")
async def worker_monitor_stats(client: Client) -> dict[str, Any]:
    """Live / stale / dead workers by heartbeat age (thresholds from the settings), leases recovered per
    worker and per queue with the last recovery, and the orphaned leases of dead workers per queue."""
    return monitor_stats(await read_monitor_input_async(client), Thresholds.from_settings(client.settings))


@router.get("/{worker_id}")
async def get_worker(
    worker_id: Annotated[str, Path(min_length=1, max_length=253)],
    client: Client,
    stale_after: Annotated[float, Query(gt=0, le=3600)] = 30.0,
) -> dict[str, Any]:
    """One worker (one round trip, whatever the fleet's size)."""
    worker = await client.get_worker(worker_id)
    if worker is not None:
        return _shape(worker, stale_after)
    raise ApiError(404, "not_found", f"no worker {worker_id!r} has heartbeated recently", "worker_id")
