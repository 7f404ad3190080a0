"""Task search, task history, dead-letter history and schedule runs, read from the PostgreSQL record
(read scope).

These routes answer 503 when the record is not configured or PostgreSQL is down; the live, Redis-backed
routes beside them (``/api/v1/tasks/{id}``, submission) never depend on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from jobqueue.keys import QUEUE_NAME_PATTERN
from jobqueue.models import TaskStatus
from jobqueue.record.queries import Page, ScheduleRunStatus, SortKey, TaskSearch, TimeField
from jobqueue_api.auth import require
from jobqueue_api.errors import ApiError
from jobqueue_api.record_access import RECORD_RESPONSES, RecordAccess, get_record
from jobqueue_api.routes.schedules import Name as ScheduleName
from jobqueue_api.routes.tasks import TaskId
from jobqueue_api.settings import Scope

router = APIRouter(
    prefix="/api/v1", tags=["record"], dependencies=[Depends(require(Scope.READ))], responses=RECORD_RESPONSES
)
Record = Annotated[RecordAccess, Depends(get_record)]
# PostgreSQL text cannot hold NUL: refused here as a 422 rather than failing in the driver.
NO_NUL = r"^[^\x00]+$"
Name = Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL)]
QueueFilter = Annotated[str | None, Query(pattern=QUEUE_NAME_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
ErrorText = Annotated[
    str | None, Query(min_length=1, max_length=500, pattern=NO_NUL, description="error contains (any case)")
]
SORTS = "|".join(k.value for k in SortKey)


def _page(page: Page[Any]) -> dict[str, Any]:
    items = [dataclasses.asdict(item) for item in page.items]
    return {"items": items, "limit": page.limit, "offset": page.offset, "has_more": page.has_more}


@router.get("/tasks")
async def search_tasks(
    record: Record,
    *,
    status: Annotated[list[TaskStatus], Query(description="repeat for several")] = [],  # noqa: B006
    name: Name = None,
    queue: QueueFilter = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    time_field: TimeField = TimeField.ENQUEUED_AT,
    error: ErrorText = None,
    sort: Annotated[str, Query(pattern=rf"^-?({SORTS})$", description="'-' = descending")] = "-enqueued_at",
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Recorded tasks matching every filter, sorted and paged; [since, until) applies to ``time_field``."""
    search = TaskSearch(
        statuses=status,
        name=name,
        queue=queue,
        since=since,
        until=until,
        time_field=time_field,
        error_contains=error,
        sort=SortKey(sort.lstrip("-")),
        descending=sort.startswith("-"),
        limit=limit,
        offset=offset,
    )
    queries = record.queries
    return _page(await record.run(lambda: queries.search_tasks(search)))


@router.get("/tasks/{task_id}/history")
async def task_history(task_id: TaskId, record: Record) -> dict[str, Any]:
    """A recorded task with every transition in order, and its failed attempts (retry history)."""
    queries = record.queries
    history = await record.run(lambda: queries.task_history(task_id))
    if history is None:
        raise ApiError(404, "not_found", f"task {task_id!r} is not in the record", "task_id")
    return dataclasses.asdict(history)


@router.get("/dead-letters/history")
async def dead_letter_history(
    record: Record,
    *,
    queue: QueueFilter = None,
    name: Name = None,
    reason: Annotated[str | None, Query(min_length=1, max_length=100, pattern=NO_NUL)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    error: ErrorText = None,
    include_closed: Annotated[bool, Query(description="also replayed and purged ones")] = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every time a task was dead-lettered, newest first, from the record (outlives a purge)."""
    queries = record.queries
    page = await record.run(
        lambda: queries.dead_letters(
            queue=queue,
            name=name,
            reason=reason,
            since=since,
            until=until,
            error_contains=error,
            include_closed=include_closed,
            limit=limit,
            offset=offset,
        )
    )
    return _page(page)


@router.get("/schedules/{name}/runs")
async def schedule_runs(
    name: ScheduleName,
    record: Record,
    *,
    status: Annotated[list[ScheduleRunStatus], Query(description="repeat for several")] = [],  # noqa: B006
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every recorded fire time of a schedule, newest first: fired, skipped (Forbid), missed (past the
    starting deadline) or failed; [since, until) applies to the fire time. Outlives the schedule."""
    queries = record.queries
    page = await record.run(
        lambda: queries.schedule_runs(
            name, statuses=status, since=since, until=until, limit=limit, offset=offset
        )
    )
    return _page(page)
