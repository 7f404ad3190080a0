"""/api/v1/worker-pools: create, inspect, scale and delete worker pools on the configured backend.

Bodies are validated twice on purpose: pydantic here (types, ranges, unknown fields: a 422 naming the
field before anything is touched) and the pure model (jobqueue.pools) for the rules that span fields
(min <= max), which every other way of managing pools shares.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from jobqueue.errors import ValidationError
from jobqueue.pools import MAX_CONCURRENCY, MAX_QUEUES, MAX_REPLICAS, MAX_TARGET_PER_REPLICA, PoolSpec
from jobqueue.pools import PoolAutoscaling as PoolAutoscalingModel
from jobqueue_api.auth import require
from jobqueue_api.pool_backends import ClusterOptions, PoolBackend
from jobqueue_api.replica_history import ReplicaHistory
from jobqueue_api.settings import Scope

router = APIRouter(prefix="/api/v1/worker-pools", tags=["worker-pools"])
# jobqueue.pools.POOL_NAME: a DNS label, so a pool name is also a valid WorkerPool resource name.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
QUEUE_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
Name = Annotated[str, Path(pattern=NAME_PATTERN)]
Replicas = Annotated[int, Field(ge=0, le=MAX_REPLICAS, strict=True)]
Concurrency = Annotated[int, Field(ge=1, le=MAX_CONCURRENCY, strict=True)]
Queues = Annotated[
    list[Annotated[str, Field(pattern=QUEUE_PATTERN)]], Field(min_length=1, max_length=MAX_QUEUES)
]


def get_backend(request: Request) -> PoolBackend:
    """The app's pool backend (chosen by JOBQUEUE_API_POOLS_BACKEND)."""
    backend: PoolBackend = request.app.state.pool_backend
    return backend


def get_replica_history(request: Request) -> ReplicaHistory:
    """The app's ring of replica samples per pool (the UI's sparklines)."""
    history: ReplicaHistory = request.app.state.replica_history
    return history


Backend = Annotated[PoolBackend, Depends(get_backend)]
History = Annotated[ReplicaHistory, Depends(get_replica_history)]
ADMIN = [Depends(require(Scope.ADMIN))]
READ = [Depends(require(Scope.READ))]


class AutoscalingBody(BaseModel):
    """Autoscaling from queue depth: replicas = clamp(ceil(tasks / target), min, max)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(strict=True)
    min_replicas: Replicas = 1
    max_replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS, strict=True)] = 10
    target_tasks_per_replica: Annotated[int, Field(ge=1, le=MAX_TARGET_PER_REPLICA, strict=True)] = 10

    def model(self) -> PoolAutoscalingModel:
        """The pure model (checks min <= max, naming the field)."""
        return PoolAutoscalingModel(**self.model_dump())


class PoolBody(BaseModel):
    """A new pool."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    queues: Queues
    concurrency: Concurrency = 4
    replicas: Replicas = 1
    autoscaling: AutoscalingBody | None = None
    # Kubernetes backend only (the local backend runs jobqueue up's app and refuses them).
    image: str | None = Field(default=None, min_length=1, max_length=512, pattern=r"^[^\s\x00]+$")
    app: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")
    processes: Annotated[int, Field(ge=1, le=64, strict=True)] | None = None
    pool_kind: Literal["process", "thread", "asyncio"] | None = None


class PoolPatch(BaseModel):
    """Fields to change; ``replicas`` turns autoscaling off (as POST .../scale)."""

    model_config = ConfigDict(extra="forbid")

    queues: Queues | None = None
    concurrency: Concurrency | None = None
    replicas: Replicas | None = None


class ScaleBody(BaseModel):
    """Hold exactly this many replicas."""

    model_config = ConfigDict(extra="forbid")

    replicas: Replicas


@router.get("", dependencies=READ)
async def list_pools(backend: Backend, history: History) -> dict[str, Any]:
    """Every pool, and which backend runs them; ``status.replica_history`` holds this API process's
    recent samples of each pool's replicas (docs/api.md)."""
    return {"backend": backend.name, "pools": [_sampled(p, history) for p in await backend.list_pools()]}


def _sampled(view: dict[str, Any], history: ReplicaHistory) -> dict[str, Any]:
    samples = history.observe(str(view.get("name")), view, time.time())
    return {**view, "status": {**(view.get("status") or {}), "replica_history": samples}}


@router.post("", status_code=201, dependencies=ADMIN)
async def create_pool(body: PoolBody, backend: Backend) -> dict[str, Any]:
    """Create a pool (409 if the name is taken; nothing is created on any error)."""
    spec = PoolSpec(
        name=body.name,
        queues=tuple(body.queues),
        concurrency=body.concurrency,
        replicas=body.replicas,
        autoscaling=body.autoscaling.model() if body.autoscaling else PoolAutoscalingModel(),
    )
    options = ClusterOptions(body.image, body.app, body.processes, body.pool_kind)
    return await backend.create(spec, options)


@router.get("/{name}", dependencies=READ)
async def get_pool(name: Name, backend: Backend, history: History) -> dict[str, Any]:
    """One pool: spec and observed status (with the replica samples, as in the list)."""
    return _sampled(await backend.get(name), history)


@router.patch("/{name}", dependencies=ADMIN)
async def patch_pool(name: Name, body: PoolPatch, backend: Backend) -> dict[str, Any]:
    """Change queues, concurrency or replicas."""
    return await backend.patch(name, body.model_dump(exclude_none=True))


@router.delete("/{name}", status_code=204, dependencies=ADMIN)
async def delete_pool(name: Name, backend: Backend, history: History) -> None:
    """Delete a pool: its workers finish their tasks and exit."""
    await backend.delete(name)
    history.forget(name)


@router.post("/{name}/scale", dependencies=ADMIN)
async def scale_pool(name: Name, body: ScaleBody, backend: Backend) -> dict[str, Any]:
    """Hold exactly ``replicas`` workers; turns autoscaling off."""
    return await backend.scale(name, body.replicas)


@router.put("/{name}/autoscaling", dependencies=ADMIN)
async def put_autoscaling(name: Name, body: AutoscalingBody, backend: Backend) -> dict[str, Any]:
    """Replace the autoscaling settings (``enabled: false`` holds the current ``replicas``)."""
    try:
        autoscaling = body.model()
    except ValidationError as exc:
        # The body is the autoscaling object itself here: name its field as the client wrote it.
        raise ValidationError(exc.field.removeprefix("autoscaling."), exc.message) from exc
    return await backend.set_autoscaling(name, autoscaling)


@router.get("/{name}/events", dependencies=READ)
async def pool_events(name: Name, backend: Backend) -> dict[str, Any]:
    """The pool's scaling and health history, newest first."""
    events = await backend.events(name)
    return {"events": [{"at": e.at, "kind": e.kind, "message": e.message} for e in events]}
