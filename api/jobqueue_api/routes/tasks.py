"""/api/v1/tasks: submit, get, cancel, retry, results."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from jobqueue.broker.aio import AsyncClient, AsyncTaskHandle
from jobqueue.broker.duplicates import find_duplicate
from jobqueue.broker.enqueue import make_request
from jobqueue.errors import InvalidTransition, ValidationError
from jobqueue.keys import QUEUE_NAME_PATTERN
from jobqueue_api.auth import ensure_scope, require
from jobqueue_api.deps import get_client
from jobqueue_api.schemas import CancelRequest, CancelResult, ExtendResult, SubmitBatch, SubmitTask, Submitted
from jobqueue_api.settings import Scope

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])
Client = Annotated[AsyncClient, Depends(get_client)]
TaskId = Annotated[str, Path(pattern=rf"{QUEUE_NAME_PATTERN[:-1]}\.[0-9a-f]{{32}}$", description="a task id")]


def _request(body: SubmitTask) -> Any:
    options = body.model_dump(exclude={"name", "args", "kwargs", "depends_on"})
    return make_request(body.name, body.args, body.kwargs, depends_on=body.depends_on or None, **options)


@router.post("", status_code=201, dependencies=[Depends(require(Scope.SUBMIT))])
async def submit(body: SubmitTask, client: Client) -> Submitted:
    """Enqueue one task."""
    handles = await client.enqueue_many([_request(body)])
    return _submitted(handles)


@router.post("/batch", status_code=201, dependencies=[Depends(require(Scope.SUBMIT))])
async def submit_batch(body: SubmitBatch, client: Client) -> Submitted:
    """Enqueue many tasks in one round trip; one invalid task (its payload, options or a missing parent)
    rejects the whole batch before anything is written, and the error names it (``tasks[3].args[0]``)."""
    try:
        requests = []
        for index, task in enumerate(body.tasks):
            try:
                requests.append(_request(task))
            except ValidationError as exc:
                raise exc.at_index(index) from exc
        handles = await client.enqueue_many(requests)
    except ValidationError as exc:
        if exc.index is None:
            raise
        raise type(exc)(f"tasks[{exc.index}].{exc.field}", exc.message) from exc
    return _submitted(handles)


def _submitted(handles: list[AsyncTaskHandle]) -> Submitted:
    return Submitted(
        ids=[h.id for h in handles],
        deduplicated=[h.deduplicated for h in handles],
        enqueue_ids=[h.enqueue_id for h in handles],
    )


@router.get("/{task_id}", dependencies=[Depends(require(Scope.READ))])
async def get_task(task_id: TaskId, client: Client) -> dict[str, Any]:
    """A task's full live record (status, attempts, result, error, traceback, retry history, times)."""
    return (await client.get_task(task_id)).to_json()


@router.get("/{task_id}/duplicate", dependencies=[Depends(require(Scope.READ))])
async def get_duplicate(task_id: TaskId, client: Client) -> dict[str, Any]:
    """For a deduplicated enqueue (its ``enqueue_ids`` entry at submit), the task it was folded into and
    the dedup signature; for any other task, ``duplicate: false`` (with its signature when unique).
    404 when the id is unknown (a folded record lives as long as its dedup key)."""
    answer = await asyncio.to_thread(find_duplicate, client.sync, task_id)
    return answer.to_json()


@router.post("/{task_id}/cancel", dependencies=[Depends(require(Scope.SUBMIT))])
async def cancel(task_id: TaskId, body: CancelRequest, client: Client) -> CancelResult:
    """Cancel a waiting task, or ask a running one to stop (graceful or force)."""
    outcome = await client.cancel(task_id, force=body.force, reason=body.reason)
    return CancelResult(id=task_id, outcome=outcome)


@router.post("/{task_id}/retry", dependencies=[Depends(require(Scope.SUBMIT))])
async def retry(task_id: TaskId, request: Request, client: Client) -> Submitted:
    """Run a finished task again: a dead letter is replayed in place (admin scope, as the replay route);
    any other final task is re-submitted as a new task with the same name and arguments."""
    record = await client.get_task(task_id)
    if not record.status.is_terminal:
        raise InvalidTransition(f"task {task_id} is {record.status.value}: it has not finished")
    if record.dead_letter_reason is not None and record.completed_at is not None:
        ensure_scope(request, Scope.ADMIN)
        await client.replay_dead_letter(task_id, reset_retries=True)
        return Submitted(ids=[task_id], deduplicated=[False], enqueue_ids=[task_id])
    handle = await client.enqueue(
        record.name,
        record.args,
        record.kwargs,
        queue=record.queue,
        priority=record.priority,
        max_retries=record.max_retries,
        timeout=record.timeout,
        soft_timeout=record.soft_timeout,
    )
    return Submitted(ids=[handle.id], deduplicated=[handle.deduplicated], enqueue_ids=[handle.enqueue_id])


@router.get("/{task_id}/result", dependencies=[Depends(require(Scope.READ))])
async def get_result(task_id: TaskId, client: Client) -> dict[str, Any]:
    """A finished task's result with its remaining lifetime (ttl_seconds null = kept until purged)."""
    record = await client.get_task(task_id)
    if not record.status.is_terminal:
        raise InvalidTransition(f"task {task_id} is {record.status.value}: no result yet")
    ttl = await client.result_ttl(task_id)
    return {
        "id": task_id,
        "status": record.status.value,
        "result": record.result,
        "error": record.error,
        "ttl_seconds": ttl,
    }


@router.put("/{task_id}/result/ttl", dependencies=[Depends(require(Scope.ADMIN))])
async def extend_result(task_id: TaskId, body: ExtendResult, client: Client) -> dict[str, Any]:
    """Keep a finished task's result for ttl_seconds from now."""
    await client.extend_result(task_id, body.ttl_seconds)
    return {"id": task_id, "ttl_seconds": body.ttl_seconds}


@router.delete("/{task_id}/result", status_code=204, dependencies=[Depends(require(Scope.ADMIN))])
async def delete_result(task_id: TaskId, client: Client) -> None:
    """Delete a finished task's record and result now."""
    await client.delete_result(task_id)
