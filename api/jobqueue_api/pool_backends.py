"""Where the API's worker pools live: the local supervisor of ``jobqueue up`` (through Redis) or, on a
cluster, WorkerPool resources. One protocol so the routes are the same for both."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any, Protocol

from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.worker_pools import PoolStatus, PoolStore
from jobqueue.errors import PoolsUnavailable, ValidationError
from jobqueue.pools import PoolAutoscaling, PoolEvent, PoolSpec


@dataclass(frozen=True)
class ClusterOptions:
    """What only a cluster pool has: the worker image, the app to import, processes per pod, pool kind."""

    image: str | None = None
    app: str | None = None
    processes: int | None = None
    pool_kind: str | None = None


class PoolBackend(Protocol):
    """Pool management as the routes need it. Every method raises PoolNotFound / PoolExists /
    ValidationError (the routes map them to 404 / 409 / 422) and changes nothing when it raises."""

    name: str

    async def list_pools(self) -> list[dict[str, Any]]:
        """Every pool's view."""
        ...

    async def get(self, name: str) -> dict[str, Any]:
        """One pool's view."""
        ...

    async def create(self, spec: PoolSpec, options: ClusterOptions) -> dict[str, Any]:
        """Create a pool."""
        ...

    async def patch(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change queues, concurrency or replicas (replicas: the manual-scale rule applies)."""
        ...

    async def scale(self, name: str, replicas: int) -> dict[str, Any]:
        """Hold exactly ``replicas`` (turns autoscaling off)."""
        ...

    async def set_autoscaling(self, name: str, autoscaling: PoolAutoscaling) -> dict[str, Any]:
        """Replace the autoscaling settings."""
        ...

    async def delete(self, name: str) -> None:
        """Delete the pool; its workers drain first."""
        ...

    async def events(self, name: str) -> list[PoolEvent]:
        """The pool's history, newest first."""
        ...


class NoPoolBackend:
    """The API was started without a pool backend: every call says how to configure one."""

    name = "none"

    def _refuse(self) -> PoolsUnavailable:
        return PoolsUnavailable(
            "pool management is not configured: set JOBQUEUE_API_POOLS_BACKEND to 'kubernetes' "
            "(the Helm chart does) or 'local' (jobqueue up does)"
        )

    async def list_pools(self) -> list[dict[str, Any]]:
        """Refused."""
        raise self._refuse()

    async def get(self, name: str) -> dict[str, Any]:
        """Refused."""
        raise self._refuse()

    async def create(self, spec: PoolSpec, options: ClusterOptions) -> dict[str, Any]:
        """Refused."""
        raise self._refuse()

    async def patch(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Refused."""
        raise self._refuse()

    async def scale(self, name: str, replicas: int) -> dict[str, Any]:
        """Refused."""
        raise self._refuse()

    async def set_autoscaling(self, name: str, autoscaling: PoolAutoscaling) -> dict[str, Any]:
        """Refused."""
        raise self._refuse()

    async def delete(self, name: str) -> None:
        """Refused."""
        raise self._refuse()

    async def events(self, name: str) -> list[PoolEvent]:
        """Refused."""
        raise self._refuse()


def apply_patch(spec: PoolSpec, changes: dict[str, Any]) -> PoolSpec:
    """``spec`` with the PATCH body's fields, one generation later; replicas follow the manual-scale rule
    (autoscaling off), as POST .../scale does."""
    fields = dict(changes)
    if "queues" in fields:
        fields["queues"] = tuple(fields["queues"])
    if "replicas" in fields:
        fields["autoscaling"] = replace(spec.autoscaling, enabled=False)
    return spec.changed(**fields)


class LocalPoolBackend:
    """Pools run by the local supervisor of ``jobqueue up``: specs and events in Redis."""

    name = "local"

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    def _store(self) -> PoolStore:
        return PoolStore(self.client.sync)

    async def _view(self, spec: PoolSpec, status: PoolStatus | None) -> dict[str, Any]:
        ready = in_flight = 0
        for queue in spec.queues:
            depth = await asyncio.to_thread(self.client.sync.queue_depth, queue)
            ready += depth.total_ready
            in_flight += depth.in_flight
        # A status of an earlier pool with the same name (still draining) says nothing about this one.
        observed = status if status is not None and status.uid == spec.uid else None
        return {
            **spec.to_dict(),
            "backend": self.name,
            "status": {
                "desired_replicas": spec.desired_replicas_when_fixed(),
                "current_replicas": observed.replicas if observed else 0,
                "ready_replicas": observed.ready if observed else 0,
                "draining_workers": observed.draining if observed else 0,
                "workers": list(observed.workers) if observed else [],
                "observed_generation": observed.observed_generation if observed else None,
                "queue_ready": ready,
                "queue_in_flight": in_flight,
            },
        }

    async def list_pools(self) -> list[dict[str, Any]]:
        """Every pool's view."""
        store = self._store()
        specs = await asyncio.to_thread(store.all)
        statuses = await asyncio.to_thread(store.statuses)
        return [await self._view(s, statuses.get(s.name)) for s in specs]

    async def get(self, name: str) -> dict[str, Any]:
        """One pool's view."""
        store = self._store()
        spec = await asyncio.to_thread(store.get, name)
        statuses = await asyncio.to_thread(store.statuses)
        return await self._view(spec, statuses.get(name))

    async def create(self, spec: PoolSpec, options: ClusterOptions) -> dict[str, Any]:
        """Create a pool (cluster-only options are refused: every local worker runs jobqueue up's app)."""
        for field_name, value in vars(options).items():
            if value is not None:
                raise ValidationError(field_name, "only on the kubernetes backend")
        await asyncio.to_thread(self._store().create, spec)
        return await self._view(spec, None)

    async def patch(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change queues, concurrency or replicas."""
        fields = ", ".join(f"{k}={v}" for k, v in sorted(changes.items()))
        spec = await asyncio.to_thread(
            self._store().update, name, lambda s: apply_patch(s, changes), "Updated", fields
        )
        return await self.get(spec.name)

    async def scale(self, name: str, replicas: int) -> dict[str, Any]:
        """Hold exactly ``replicas``; autoscaling off."""
        message = f"scaled to {replicas} replicas by hand (autoscaling off)"
        await asyncio.to_thread(self._store().update, name, lambda s: s.scaled(replicas), "Scaled", message)
        return await self.get(name)

    async def set_autoscaling(self, name: str, autoscaling: PoolAutoscaling) -> dict[str, Any]:
        """Replace the autoscaling settings."""
        message = (
            f"autoscaling on: {autoscaling.min_replicas}..{autoscaling.max_replicas}, "
            f"{autoscaling.target_tasks_per_replica} tasks per replica"
            if autoscaling.enabled
            else "autoscaling off"
        )
        await asyncio.to_thread(
            self._store().update,
            name,
            lambda s: s.changed(autoscaling=autoscaling),
            "AutoscalingChanged",
            message,
        )
        return await self.get(name)

    async def delete(self, name: str) -> None:
        """Delete the pool; the supervisor drains its workers."""
        await asyncio.to_thread(self._store().delete, name)

    async def events(self, name: str) -> list[PoolEvent]:
        """The pool's history, newest first; 404 for a name with neither a pool nor history."""
        store = self._store()
        events = await asyncio.to_thread(store.events, name)
        if not events:
            await asyncio.to_thread(store.get, name)  # PoolNotFound when there is no such pool
        return events
