"""The processes of the soak (bench/soak.py), real ones as production runs them: an embedded Redis with
AOF (fsync on every write), an embedded PostgreSQL, ``jobqueue scheduler``, ``jobqueue recorder``,
``jobqueue api`` and ``jobqueue worker`` subprocesses; plus the faults the soak injects into them.

Workers play pods under a Deployment: each runs in its own process group (its pool's children with it),
is SIGKILLed as a group, and is started again when it has exited. The other services are restarted too if
they ever exit, and every restart is counted: a service that had to be restarted is a finding.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from jobqueue.embedded.postgres_server import PostgresServer
from jobqueue.embedded.redis_server import RedisServer, free_port
from jobqueue.record.migrate import migrate

DATABASE = "jobqueue"
# Short leases, so the tasks of a killed worker are back in the queue within seconds of the kill.
LEASE_SECONDS = 4.0
HEARTBEAT_SECONDS = 1.0
# Small, so the soak's oversize task crosses it cheaply; real deployments keep the default (4 MiB).
MAX_RESULT_BYTES = 65_536
# One process pool and one thread pool: the two pools whose acker a poison output once killed.
WORKER_POOLS = ("process", "thread", "process")


@dataclass
class Restarts:
    """Faults injected and restarts seen."""

    workers_killed: int = 0
    redis_crashes: int = 0
    postgres_outages: int = 0
    service_restarts: dict[str, int] = field(default_factory=dict)
    # Process groups SIGKILLed: a second run of a task whose earlier run was in one of them is allowed.
    killed_groups: set[int] = field(default_factory=set)
    redis_crash_times: list[float] = field(default_factory=list)


class SoakStack:
    """Everything the soak runs; ``start()`` brings it up, ``stop()`` takes it all down."""

    def __init__(self, base: Path | None = None) -> None:
        # Not a private temp dir: as root, PostgreSQL runs as an unprivileged user that must reach it.
        self.base = base or Path(tempfile.mkdtemp(prefix="jobqueue-soak-"))
        os.chmod(self.base, 0o755)
        self.runs_dir = self.base / "runs"
        self.logs = self.base / "logs"
        self.redis = RedisServer(
            self.base / "redis", appendonly=True, appendfsync="always", password=secrets.token_urlsafe(16)
        )
        self.postgres = PostgresServer(self.base / "postgres", durable=False)
        self.api_key = secrets.token_urlsafe(16)
        self.api_port = free_port()
        self.restarts = Restarts()
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * len(WORKER_POOLS)

    @property
    def api_url(self) -> str:
        """Base URL of the REST API."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def database_url(self) -> str:
        """URL of the record database."""
        return self.postgres.url(DATABASE)

    def env(self) -> dict[str, str]:
        """Environment of every child process."""
        return {
            **os.environ,
            "JOBQUEUE_REDIS_URL": self.redis.url,
            "JOBQUEUE_DATABASE_URL": self.database_url,
            "JOBQUEUE_LEASE_SECONDS": str(LEASE_SECONDS),
            "JOBQUEUE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "JOBQUEUE_MAX_RESULT_BYTES": str(MAX_RESULT_BYTES),
            "JOBQUEUE_API_KEYS": f"{self.api_key}:admin",
            "JOBQUEUE_API_PORT": str(self.api_port),
            "SOAK_RUNS_DIR": str(self.runs_dir),
            # The workers import bench.soak_tasks from the checkout.
            "PYTHONPATH": os.pathsep.join(
                [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH", "")]
            ),
        }

    def start(self) -> SoakStack:
        """Start the servers, migrate the record, start the services and the workers."""
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        self.postgres.start()
        self.postgres.create_database(DATABASE)
        migrate(self.database_url)
        for name in ("scheduler", "recorder", "api"):
            self.services[name] = self._spawn(name, [name])
        for slot in range(len(WORKER_POOLS)):
            self.workers[slot] = self._spawn_worker(slot)
        self._wait_for_api()
        return self

    def _wait_for_api(self, timeout: float = 60.0) -> None:
        # The load starts only once the API answers: a request refused because uvicorn was still
        # starting would be counted against the API (and hide in "refused").
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.api_url}/healthz", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or self.services["api"].poll() is not None:
                    raise RuntimeError(f"the API did not start; see {self.logs / 'api.log'}") from None
                time.sleep(0.2)

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:  # the child keeps its own descriptor
            return subprocess.Popen(
                [sys.executable, "-m", "jobqueue", *args],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill takes its pool children too
            )

    def _spawn_worker(self, slot: int) -> subprocess.Popen[bytes]:
        args = ["worker", "--app", "bench.soak_tasks:app", "--queues", "soak", "--concurrency", "4"]
        return self._spawn(f"worker{slot}", [*args, "--pool", WORKER_POOLS[slot], "--grace", "5"])

    def tick(self) -> None:
        """Start again every worker and service that has exited (what a Deployment does)."""
        for slot, worker in enumerate(self.workers):
            if worker is None or worker.poll() is not None:
                self.workers[slot] = self._spawn_worker(slot)
        for name, process in list(self.services.items()):
            if process.poll() is not None:
                self.restarts.service_restarts[name] = self.restarts.service_restarts.get(name, 0) + 1
                self.services[name] = self._spawn(name, [name])

    def kill_worker(self, slot: int) -> None:
        """SIGKILL one worker with its pool children, as a node losing a pod does."""
        worker = self.workers[slot]
        if worker is None or worker.poll() is not None:
            return
        self.restarts.killed_groups.add(worker.pid)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        self.restarts.workers_killed += 1

    def crash_redis(self) -> None:
        """SIGKILL Redis (no shutdown, no final AOF rewrite: what survives is what was fsynced)."""
        process = self.redis.process
        assert process is not None
        self.restarts.redis_crash_times.append(time.time())
        process.kill()
        process.wait(10)
        self.redis.process = None
        self.restarts.redis_crashes += 1

    def restart_redis(self) -> None:
        """Start Redis again on the same port, from its AOF."""
        self.redis.start(timeout=60)

    def stop_postgres(self) -> None:
        """Begin a PostgreSQL outage (the server is stopped; the recorder must wait, not lose)."""
        self.postgres.stop()
        self.restarts.postgres_outages += 1

    def start_postgres(self) -> None:
        """End the outage."""
        self.postgres.start(timeout=60)

    def stop(self, keep_files: bool = False) -> None:
        """Stop everything; the files go too unless ``keep_files`` (to read the logs after a failure)."""
        running = [p for p in (*self.services.values(), *self.workers) if p is not None and p.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        self.redis.stop()
        self.postgres.stop()
        if not keep_files:
            shutil.rmtree(self.base, ignore_errors=True)
