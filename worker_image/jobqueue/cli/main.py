"""The ``jobqueue`` command line: worker, scheduler, up (local stack), enqueue, status, dlq; submit, cancel
and queues talk to the REST API (cli_api.py)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from jobqueue.app import App, load_app
from jobqueue.cli.api import add_api_options, api_url, dlq_via_api, status_via_api
from jobqueue.cli.api import add_commands as add_api_commands
from jobqueue.cli.flow_control import add_commands as add_flow_commands
from jobqueue.errors import JobQueueError, ValidationError
from jobqueue.log_config import configure_logging
from jobqueue.settings import ApiClientSettings, Settings

log = logging.getLogger("jobqueue.cli.main")


def _worker(args: argparse.Namespace) -> int:
    if args.processes < 1:
        raise ValidationError("processes", "must be >= 1")
    if args.processes > 1:
        return _worker_processes(args)
    from jobqueue.worker.process_pool import ProcessPool  # noqa: PLC0415 - only the worker needs it
    from jobqueue.worker.runtime import Worker  # noqa: PLC0415
    from jobqueue.worker.thread_pool import AsyncPool, ThreadPool  # noqa: PLC0415

    app = load_app(args.app)
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    pool: ProcessPool | ThreadPool | AsyncPool
    if args.pool == "process":
        pool = ProcessPool(args.app, args.concurrency, logging.getLogger().level)
    elif args.pool == "thread":
        pool = ThreadPool(app, args.concurrency)
    else:
        pool = AsyncPool(app, args.concurrency)
    worker = Worker(
        app,
        pool,
        queues,
        worker_id=args.worker_id,
        grace_seconds=args.grace,
        prefetch=args.prefetch,
        before_fetching=_start_gate(args.start_gate, lambda: worker.stopping),
    )
    worker.install_signal_handlers()
    if args.parent_pid is not None:
        _follow_parent(args.parent_pid, worker.stop)
    return worker.run()


def _start_gate(gate: str | None, stopping: Callable[[], bool]) -> Callable[[], None] | None:
    """The start gate of a child of ``--processes`` (worker/processes.py), or None."""
    if gate is None:
        return None
    from jobqueue.worker.processes import wait_at_start_gate  # noqa: PLC0415

    return lambda: wait_at_start_gate(gate, stopping)


def _follow_parent(parent_pid: int, stop: Callable[[], None]) -> None:
    """Drain when the parent of ``--processes`` is gone (killed outright, it cannot forward a signal):
    a worker process must not outlive the pod process that supervises it."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        log.warning("parent process %d is gone: draining", parent_pid)
        stop()

    threading.Thread(target=watch, name="jobqueue-parent-watch", daemon=True).start()


def _worker_processes(args: argparse.Namespace) -> int:
    from jobqueue.worker.processes import WorkerProcesses  # noqa: PLC0415
    from jobqueue.worker.runtime import default_worker_id  # noqa: PLC0415

    app = load_app(args.app)  # fails here, once, rather than in every child
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    worker_args = [
        "--log-level", args.log_level,
        "--log-format", args.log_format,
        "worker",
        "--app", args.app,
        "--queues", args.queues,
        "--concurrency", str(args.concurrency),
        "--pool", args.pool,
        "--grace", str(args.grace),
    ]  # fmt: skip
    if args.prefetch is not None:
        worker_args += ["--prefetch", str(args.prefetch)]

    def recover_leases(worker_id: str) -> None:
        app.client.recover_expired_leases(queues, worker_id=worker_id)

    parent = WorkerProcesses(
        worker_args,
        base_id=args.worker_id or default_worker_id(app.settings.pod_name),
        processes=args.processes,
        grace_seconds=args.grace,
        recover_leases=recover_leases,
    )
    parent.install_signal_handlers()
    return parent.run()


def _scheduler(args: argparse.Namespace) -> int:
    from jobqueue.broker.client import Client  # noqa: PLC0415
    from jobqueue.services.scheduler import Scheduler  # noqa: PLC0415

    scheduler = Scheduler(Client(Settings()), interval_seconds=args.interval)

    def handler(signum: int, frame: FrameType | None) -> None:
        scheduler.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    scheduler.run()
    return 0


def _api(args: argparse.Namespace) -> int:
    from jobqueue_api import create_app  # noqa: PLC0415 - the api extra is optional for workers
    from jobqueue_api.server import serve  # noqa: PLC0415
    from jobqueue_api.settings import ApiSettings  # noqa: PLC0415

    overrides: dict[str, object] = {}
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    api_settings = ApiSettings(**overrides)  # type: ignore[arg-type]
    app = create_app(Settings(), api_settings)
    serve(app, api_settings)
    return 0


def _up(args: argparse.Namespace) -> int:
    from jobqueue.services.local_stack import run_local_stack  # noqa: PLC0415

    return run_local_stack(args)


def _migrate(args: argparse.Namespace) -> int:
    from jobqueue.record.maintenance import run_migrate  # noqa: PLC0415 - needs the record extra

    applied = run_migrate(Settings())
    print(f"applied migrations: {applied}" if applied else "database is up to date")
    return 0


def _recorder(args: argparse.Namespace) -> int:
    from jobqueue.record.maintenance import run_recorder  # noqa: PLC0415 - needs the record extra
    from jobqueue.record.settings import RecordSettings  # noqa: PLC0415

    return run_recorder(Settings(), RecordSettings(), consumer=args.consumer)


def _client(args: argparse.Namespace) -> App:
    return load_app(args.app) if getattr(args, "app", None) else App()


def _json_option(text: str, field: str) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(field, f"is not valid JSON ({exc})") from exc


def _enqueue(args: argparse.Namespace) -> int:
    app = _client(args)
    handle = app.client.enqueue(
        args.name,
        _json_option(args.args, "args"),  # type: ignore[arg-type]
        _json_option(args.kwargs, "kwargs"),  # type: ignore[arg-type]
        queue=args.queue,
        priority=args.priority,
        countdown=args.countdown,
        max_retries=args.max_retries,
        timeout=args.timeout,
        unique=args.unique,
        unique_key=args.unique_key,
        unique_ttl=args.unique_ttl,
        unique_rerun=args.unique_rerun,
        depends_on=args.depends_on or None,
    )
    print(handle.id)
    if args.wait is not None:
        print(json.dumps(handle.result(timeout=args.wait)))
    return 0


def _status(args: argparse.Namespace) -> int:
    api_settings = ApiClientSettings()
    if api_url(args, api_settings):
        return status_via_api(args, api_settings)
    if args.history:
        raise ValidationError("history", "needs the REST API (--api URL or JOBQUEUE_API_URL)")
    print(json.dumps(_client(args).client.get_task(args.task_id).to_json(), indent=2))
    return 0


def _dlq(args: argparse.Namespace) -> int:
    api_settings = ApiClientSettings()
    if api_url(args, api_settings):
        return dlq_via_api(args, api_settings)
    client = _client(args).client
    if args.action == "list":
        for record in client.list_dead_letters(args.queue, limit=args.limit):
            print(f"{record.id}  {record.name}  {record.dead_letter_reason}  {record.error}")
    elif args.action == "stats":
        stats = client.dead_letter_stats(args.queue)
        print(json.dumps({"total": stats.total, "by_task": stats.by_task, "by_reason": stats.by_reason}))
    elif args.action == "replay":
        for task_id in args.ids:
            client.replay_dead_letter(task_id, reset_retries=args.reset)
            print(f"replayed {task_id}")
    elif args.action == "purge":
        print(f"purged {client.purge_dead_letters(args.queue)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="jobqueue", description="jobqueue: a distributed job queue")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="run a worker process")
    w.add_argument("--app", required=True, help="module:attribute of your App, e.g. myproject.tasks:app")
    w.add_argument("--queues", default="default", help="comma-separated, in priority order")
    w.add_argument("--concurrency", type=int, default=4)
    w.add_argument("--pool", choices=["process", "thread", "async"], default="process")
    w.add_argument(
        "--processes",
        type=int,
        default=1,
        help="worker processes (each its own pool and Redis connections); ids <worker-id>_0 .. _N-1 if N > 1",
    )
    w.add_argument("--worker-id", default=None, help="defaults to $POD_NAME, else host-pid-random")
    # Set by --processes for its children only (worker/processes.py).
    w.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    w.add_argument("--start-gate", default=None, help=argparse.SUPPRESS)
    w.add_argument("--grace", type=float, default=30.0, help="seconds to finish in-flight work on SIGTERM")
    w.add_argument(
        "--prefetch",
        type=int,
        default=None,
        help="at most this many tasks leased ahead of free slots, while tasks are short (default: 256)",
    )
    w.set_defaults(func=_worker)

    s = sub.add_parser("scheduler", help="recover expired leases and promote delayed tasks")
    s.add_argument("--interval", type=float, default=1.0)
    s.set_defaults(func=_scheduler)

    a = sub.add_parser("api", help="serve the REST API (JOBQUEUE_API_KEYS, JOBQUEUE_API_HOST/PORT)")
    a.add_argument("--host", default=None)
    a.add_argument("--port", type=int, default=None)
    a.set_defaults(func=_api)

    m = sub.add_parser("migrate", help="apply pending PostgreSQL migrations (JOBQUEUE_DATABASE_URL)")
    m.set_defaults(func=_migrate)

    r = sub.add_parser("recorder", help="record the task event streams into PostgreSQL")
    r.add_argument("--consumer", default=None, help="consumer name (defaults to $POD_NAME, else host-pid)")
    r.set_defaults(func=_recorder)

    u = sub.add_parser("up", help="run the whole system locally on an embedded Redis")
    u.add_argument("--data-dir", default=".jobqueue")
    u.add_argument("--redis-port", type=int, default=6390, help="0 picks a free port")
    u.add_argument("--api-port", type=int, default=8000)
    u.add_argument("--workers", type=int, default=1, help="minimum worker processes")
    u.add_argument("--max-workers", type=int, default=4, help="autoscaling maximum")
    u.add_argument("--concurrency", type=int, default=2)
    u.add_argument("--demo-rate", type=float, default=5.0, help="demo tasks per second (0 = none)")
    u.add_argument("--duration", type=float, default=None, help="stop after N seconds (default: Ctrl-C)")
    u.set_defaults(func=_up)

    e = sub.add_parser("enqueue", help="enqueue a task by name")
    e.add_argument("name")
    e.add_argument("--args", default="[]", help="JSON array")
    e.add_argument("--kwargs", default="{}", help="JSON object")
    e.add_argument("--queue", default="default")
    e.add_argument("--priority", default="medium")
    e.add_argument("--countdown", type=float, default=None)
    e.add_argument(
        "--max-retries", type=int, default=None, help="retries after a failure (default: the queue's default)"
    )
    e.add_argument("--timeout", type=float, default=None)
    e.add_argument("--wait", type=float, default=None, help="wait up to N seconds and print the result")
    e.add_argument("--unique", action="store_true", help="deduplicate on name + args (docs/deduplication.md)")
    e.add_argument("--unique-key", default=None, help="deduplicate on this key instead")
    e.add_argument("--unique-ttl", type=int, default=None, help="seconds the dedup key lives (default 24 h)")
    e.add_argument("--unique-rerun", action="store_true", help="allow a new run once the earlier completed")
    e.add_argument("--depends-on", action="append", default=[], metavar="TASK_ID", help="parent (repeatable)")
    e.set_defaults(func=_enqueue)

    st = sub.add_parser("status", help="show a task")
    st.add_argument("task_id")
    st.add_argument("--history", action="store_true", help="every recorded transition (API with a record)")
    add_api_options(st)
    st.set_defaults(func=_status)

    d = sub.add_parser("dlq", help="dead letter queue: list, stats, replay, purge")
    d.add_argument("action", choices=["list", "stats", "replay", "purge"])
    d.add_argument("--queue", default="default")
    d.add_argument("--limit", type=int, default=50)
    d.add_argument("--reset", action="store_true", help="replay with retry counters reset")
    d.add_argument("ids", nargs="*")
    add_api_options(d)
    d.set_defaults(func=_dlq)

    add_flow_commands(sub)
    add_api_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jobqueue`` command."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        return int(args.func(args))
    except JobQueueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
