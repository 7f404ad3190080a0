"""The worker pools of ``jobqueue up`` that the REST API manages: each tick reads the pool specs the API
wrote to Redis (broker/worker_pools.py) and makes the worker processes match them, one LocalSupervisor per
pool, then writes back what it observed and what it did (the pool's events).

A deleted pool, or one re-created under the same name (a new uid), is retired: its workers drain, finish
their tasks and exit, under the same drain deadline as any scale-down; nothing is killed mid-task.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from jobqueue.broker.client import Client
from jobqueue.broker.worker_pools import PoolStatus, PoolStore
from jobqueue.pools import PoolSpec
from jobqueue.scaling import ScalingPolicy
from jobqueue.services.supervisor import LocalSupervisor

log = logging.getLogger(__name__)


def policy_for(spec: PoolSpec) -> ScalingPolicy:
    """The autoscaling policy of a pool (unused while autoscaling is off: the pool holds its replicas).
    Cooldowns are those of ``jobqueue up``'s own pool: short, a laptop reacts fast."""
    auto = spec.autoscaling
    return ScalingPolicy(
        min_replicas=auto.min_replicas,
        max_replicas=auto.max_replicas,
        target_per_replica=auto.target_tasks_per_replica,
        scale_up_cooldown_seconds=5,
        scale_down_cooldown_seconds=30,
    )


@dataclass
class RunningPool:
    """A pool this process runs: the spec it last applied and the supervisor of its workers."""

    spec: PoolSpec
    supervisor: LocalSupervisor
    restarts_seen: int = 0


class PoolFleet:
    """Runs the API-managed pools on this machine."""

    def __init__(
        self,
        client: Client,
        *,
        app_spec: str,
        log_dir: Path,
        env: dict[str, str],
        heartbeat_stale_seconds: float = 30.0,
    ) -> None:
        self.client = client
        self.store = PoolStore(client)
        self.app_spec = app_spec
        self.log_dir = log_dir
        self.env = env
        self.heartbeat_stale_seconds = heartbeat_stale_seconds
        self.running: dict[str, RunningPool] = {}
        self.retiring: list[RunningPool] = []

    def _start(self, spec: PoolSpec) -> RunningPool:
        supervisor = LocalSupervisor(
            self.client,
            app_spec=self.app_spec,
            queues=list(spec.queues),
            concurrency=spec.concurrency,
            policy=policy_for(spec),
            log_dir=self.log_dir,
            env=self.env,
            heartbeat_stale_seconds=self.heartbeat_stale_seconds,
            worker_prefix=f"pool-{spec.name}",
        )
        return RunningPool(spec, supervisor)

    def _retire(self, pool: RunningPool, why: str) -> None:
        pool.supervisor.drain_all()
        self.retiring.append(pool)
        self.store.record_event(
            pool.spec.name, "Draining", f"{why}: draining {len(pool.supervisor.workers)} worker(s)"
        )

    def _apply(self, pool: RunningPool, spec: PoolSpec) -> None:
        old = pool.spec
        pool.spec = spec
        pool.supervisor.policy = policy_for(spec)
        if (old.queues, old.concurrency) != (spec.queues, spec.concurrency):
            pool.supervisor.queues = list(spec.queues)
            pool.supervisor.concurrency = spec.concurrency
            if pool.supervisor.replicas:
                # New workers with the new queues start first; the old ones finish their tasks.
                pool.supervisor.roll()
                self.store.record_event(spec.name, "Restarted", "queues or concurrency changed")

    def tick(self) -> None:
        """Make the running pools match the stored specs, one scaling step each, and report."""
        specs = {spec.name: spec for spec in self.store.all()}
        for name, pool in list(self.running.items()):
            spec = specs.get(name)
            if spec is None or spec.uid != pool.spec.uid:
                del self.running[name]
                self._retire(pool, "pool deleted" if spec is None else "pool re-created")
        for name, spec in specs.items():
            existing = self.running.get(name)
            if existing is None:
                existing = self.running[name] = self._start(spec)
                self.store.record_event(name, "Started", "the local supervisor runs this pool")
            elif spec.generation != existing.spec.generation:
                self._apply(existing, spec)
            self._step(existing)
        for pool in list(self.retiring):
            if pool.supervisor.tick_draining():
                self.retiring.remove(pool)
                self.store.record_event(pool.spec.name, "Drained", "every worker of the old pool exited")
                if pool.spec.name not in self.running:
                    self.store.clear_status(pool.spec.name)

    def _step(self, pool: RunningPool) -> None:
        supervisor = pool.supervisor
        before = supervisor.replicas
        reason = supervisor.tick(fixed_replicas=pool.spec.desired_replicas_when_fixed())
        if reason is not None:
            kind = "ScaledUp" if supervisor.replicas > before else "ScaledDown"
            self.store.record_event(pool.spec.name, kind, reason)
        if supervisor.restarts != pool.restarts_seen:
            replaced = supervisor.restarts - pool.restarts_seen
            pool.restarts_seen = supervisor.restarts
            self.store.record_event(
                pool.spec.name, "WorkerReplaced", f"{replaced} worker(s) died or went stale; leases recovered"
            )
        self._report(pool)

    def _report(self, pool: RunningPool) -> None:
        serving = [w for w, m in pool.supervisor.workers.items() if not m.draining]
        fresh = {w.id for w in self.client.list_workers() if w.heartbeat_age <= self.heartbeat_stale_seconds}
        status = PoolStatus(
            uid=pool.spec.uid,
            observed_generation=pool.spec.generation,
            replicas=len(serving),
            ready=sum(1 for w in serving if w in fresh),
            draining=len(pool.supervisor.workers) - len(serving),
            workers=tuple(sorted(serving)),
            updated_at=time.time(),
        )
        self.store.write_status(pool.spec.name, status)

    def stop(self) -> None:
        """SIGTERM every pool's workers and wait for them (``jobqueue up`` is stopping)."""
        for pool in [*self.running.values(), *self.retiring]:
            pool.supervisor.stop()
