"""The local supervisor of ``jobqueue up``: keeps worker processes alive and scales them from queue depth
with the same pure decisions the Kubernetes operator uses (jobqueue.scaling)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from jobqueue.broker.client import Client
from jobqueue.scaling import ScalingPolicy, Worker, choose_workers_to_drain, stale_workers

log = logging.getLogger(__name__)

# How long a worker asked to drain may take to exit before it is killed: the worker's own grace period
# for running tasks (30 s, `jobqueue worker --grace`), its ack flush (up to 15 s) and its pool's stop
# (a few seconds), with room for a loaded machine.
DEFAULT_DRAIN_TIMEOUT_SECONDS = 90.0


@dataclass(frozen=True)
class HealthChecks:
    """What one supervisor tick does about workers that look unwell (see :func:`check_workers`)."""

    replace: list[str]  # serving workers that stopped heartbeating: kill, recover, start another
    kill_overdue: list[str]  # drains that outlived their deadline: kill and recover, no replacement


def check_workers(
    serving: Mapping[str, float],
    drains: Mapping[str, float],
    heartbeats: Mapping[str, float],
    now: float,
    *,
    stale_after: float,
    drain_timeout: float,
) -> HealthChecks:
    """Decide which workers to kill: pure, all times on one clock.

    ``serving`` maps each worker not asked to drain to its start time, ``drains`` each worker asked to
    drain to the moment it was asked, ``heartbeats`` worker ids to their last heartbeat.

    Only serving workers are judged by their heartbeat. A draining worker stops heartbeating once its
    last task is acked and deregisters before its process exits (its process pool's stop may wait
    seconds for each child, longer on a loaded machine): it would look hung exactly while it is shutting
    down as asked, and replacing it would undo the scale-down and start the drain over. It only has a
    deadline. The Kubernetes operator leaves pods under drain out of its staleness check for the same
    reason.
    """
    return HealthChecks(
        replace=stale_workers(serving, heartbeats, now, stale_after),
        kill_overdue=sorted(w for w, asked in drains.items() if now - asked > drain_timeout),
    )


@dataclass
class ManagedWorker:
    """One worker process started by the supervisor."""

    worker_id: str
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    drain_requested_at: float | None = None  # monotonic; set once the supervisor asked it to drain

    @property
    def draining(self) -> bool:
        """Asked to drain: it finishes its tasks and exits 0 on its own."""
        return self.drain_requested_at is not None


class LocalSupervisor:
    """Starts, restarts, scales and drains ``jobqueue worker`` processes on this machine."""

    def __init__(
        self,
        client: Client,
        *,
        app_spec: str,
        queues: list[str],
        concurrency: int,
        policy: ScalingPolicy,
        log_dir: Path,
        env: dict[str, str],
        heartbeat_stale_seconds: float = 30.0,
        drain_timeout_seconds: float = DEFAULT_DRAIN_TIMEOUT_SECONDS,
        worker_prefix: str = "local",
    ) -> None:
        self.client = client
        self.app_spec = app_spec
        self.queues = queues
        self.concurrency = concurrency
        self.policy = policy
        self.log_dir = log_dir
        self.env = env
        self.heartbeat_stale_seconds = heartbeat_stale_seconds
        self.drain_timeout_seconds = drain_timeout_seconds
        # Several supervisors (one per pool) share a process: the prefix keeps their worker ids apart.
        self.worker_prefix = worker_prefix
        self.workers: dict[str, ManagedWorker] = {}
        self.restarts = 0
        self.last_scale: float | None = None
        self._next_index = 0

    def _spawn(self) -> ManagedWorker:
        worker_id = f"{self.worker_prefix}-{os.getpid()}-{self._next_index}"
        self._next_index += 1
        # The child keeps its own copy of the log file descriptor; ours closes right after the start.
        cmd = [
            sys.executable,
            "-m",
            "jobqueue",
            "worker",
            "--app",
            self.app_spec,
            "--queues",
            ",".join(self.queues),
            "--concurrency",
            str(self.concurrency),
            "--worker-id",
            worker_id,
        ]
        with (self.log_dir / f"{worker_id}.log").open("ab") as out:
            process = subprocess.Popen(
                cmd, env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT
            )
        worker = ManagedWorker(worker_id, process)
        self.workers[worker_id] = worker
        return worker

    def start(self) -> None:
        """Start the minimum number of workers."""
        for _ in range(max(1, self.policy.min_replicas)):
            self._spawn()

    @property
    def replicas(self) -> int:
        """Workers counted toward the desired number (draining ones are on their way out)."""
        return sum(1 for w in self.workers.values() if not w.draining)

    def tick(self, fixed_replicas: int | None = None) -> str | None:
        """Replace dead or hung workers, kill overdue drains, then apply one scaling decision (or hold
        ``fixed_replicas`` when given: a pool whose autoscaling is off); returns what it did."""
        self._reap_exited()
        self._kill_unwell()
        now = time.monotonic()
        if fixed_replicas is not None:
            if fixed_replicas == self.replicas:
                return None
            reason = f"held at {fixed_replicas} replicas, was {self.replicas}"
            self._scale_to(fixed_replicas)
            self.last_scale = now
            log.info("scaled workers: %s", reason)
            return reason
        ready = in_flight = 0
        for queue in self.queues:
            depth = self.client.queue_depth(queue)
            ready += depth.total_ready
            in_flight += depth.in_flight
        decision = self.policy.decide(
            ready=ready, in_flight=in_flight, current=self.replicas, last_scale_time=self.last_scale, now=now
        )
        if decision.replicas == self.replicas:
            return None
        self._scale_to(decision.replicas)
        self.last_scale = now
        work = ready + in_flight
        reason = f"{decision.reason.value}: {work} tasks, target {decision.target}, now {self.replicas}"
        log.info("scaled workers: %s", reason)
        return reason

    def _scale_to(self, replicas: int) -> None:
        if replicas > self.replicas:
            for _ in range(replicas - self.replicas):
                self._spawn()
        elif replicas < self.replicas:
            for worker_id in choose_workers_to_drain(self._candidates(), self.replicas - replicas):
                self.drain(worker_id)

    def drain_all(self) -> None:
        """Ask every serving worker to drain (the pool is going away)."""
        for worker_id, worker in list(self.workers.items()):
            if not worker.draining:
                self.drain(worker_id)

    def tick_draining(self) -> bool:
        """One tick of a supervisor whose workers all drain: forget those that exited, kill the overdue;
        True once none is left."""
        self._reap_exited()
        self._kill_unwell()
        return not self.workers

    def roll(self) -> None:
        """Replace every serving worker (``jobqueue up --reload`` after a source change): new workers
        start at once with the new code; the old ones drain, finishing their running tasks first."""
        old = [worker_id for worker_id, worker in self.workers.items() if not worker.draining]
        for _ in range(max(1, len(old))):
            self._spawn()
        for worker_id in old:
            self.drain(worker_id)

    def drain(self, worker_id: str) -> None:
        """Ask one worker to drain and exit; it no longer counts toward the replicas."""
        self.workers[worker_id].drain_requested_at = time.monotonic()
        # Drain, not kill: the worker stops fetching, finishes its tasks and exits 0. Not a held drain
        # (the operator's exit=False): nothing here would ever stop a worker left idle.
        self.client.request_drain(worker_id, exit=True)

    def _candidates(self) -> list[Worker]:
        """Workers that may be drained, with what they run right now."""
        reported = {w.id: w for w in self.client.list_workers()}
        return [
            Worker(
                pod_name=worker_id,
                in_flight=len(reported[worker_id].in_flight) if worker_id in reported else 0,
                pod_ready=worker_id in reported,
                created_at=worker.started,
            )
            for worker_id, worker in self.workers.items()
            if not worker.draining
        ]

    def _reap_exited(self) -> None:
        for worker_id, worker in list(self.workers.items()):
            code = worker.process.poll()
            if code is None:
                continue
            del self.workers[worker_id]
            if not worker.draining:
                log.warning("worker %s exited with %s; replacing it", worker_id, code)
                self.client.recover_expired_leases(self.queues, worker_id=worker_id)
                self.restarts += 1
                self._spawn()

    def _kill_unwell(self) -> None:
        now = time.monotonic()
        # Heartbeat ages are wall-clock ages; turn them into moments on the monotonic clock used here.
        heartbeats = {w.id: now - w.heartbeat_age for w in self.client.list_workers()}
        checks = check_workers(
            {w.worker_id: w.started for w in self.workers.values() if w.drain_requested_at is None},
            {
                w.worker_id: w.drain_requested_at
                for w in self.workers.values()
                if w.drain_requested_at is not None
            },
            heartbeats,
            now,
            stale_after=self.heartbeat_stale_seconds,
            drain_timeout=self.drain_timeout_seconds,
        )
        for worker_id in checks.replace:
            log.warning("worker %s stopped heartbeating; killing and replacing it", worker_id)
            self._kill(worker_id)
            self.restarts += 1
            self._spawn()
        for worker_id in checks.kill_overdue:
            # Wanted gone anyway: no replacement (the scaling decision starts one if the load needs it).
            log.warning("worker %s did not finish draining in time; killing it", worker_id)
            self._kill(worker_id)

    def _kill(self, worker_id: str) -> None:
        worker = self.workers.pop(worker_id)
        worker.process.kill()
        worker.process.wait(10)
        # Known dead: its leases come back now rather than at expiry.
        self.client.recover_expired_leases(self.queues, worker_id=worker_id)

    def stop(self, timeout: float = 40.0) -> None:
        """SIGTERM every worker (they drain) and wait for them."""
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.terminate()
        deadline = time.monotonic() + timeout
        for worker in self.workers.values():
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
