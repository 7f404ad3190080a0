"""``jobqueue worker``: its options, their checks, and the start of a worker process or of ``--processes``.

Apart from the other commands because it is the worker's start path: its cold start is its import time, so
everything it runs is imported when it runs (the function-local imports below), and what it loads is kept
out of the collector (worker/startup.py). The children of ``--processes`` re-run this command with the
hidden options ``--parent-pid`` and ``--start-gate``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobqueue.errors import ValidationError
from jobqueue.log_config import resolve_format

if TYPE_CHECKING:
    from jobqueue.app import App
    from jobqueue.settings import Settings
    from jobqueue.worker.async_pool import AsyncPool
    from jobqueue.worker.child_recycling import ChildLimits
    from jobqueue.worker.process_pool import ProcessPool
    from jobqueue.worker.thread_pool import ThreadPool

log = logging.getLogger(__name__)


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``jobqueue worker``."""
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
    w.add_argument(
        "--burst",
        action="store_true",
        help="run until the queues are idle, then exit: 0, or 1 if a task ended FAILED or TIMEOUT",
    )
    w.add_argument(
        "--burst-wait",
        type=float,
        default=0.0,
        help="with --burst: also wait for delayed tasks (retries, countdowns) due within N seconds",
    )
    w.add_argument(
        "--max-tasks-per-child",
        type=int,
        default=None,
        help="process pool: replace a child after N tasks, between tasks ($JOBQUEUE_MAX_TASKS_PER_CHILD)",
    )
    w.add_argument(
        "--max-memory-per-child-mb",
        type=int,
        default=None,
        help="process pool (Linux): replace a child whose resident memory is over N MiB after a task "
        "($JOBQUEUE_MAX_MEMORY_PER_CHILD_MB)",
    )
    w.set_defaults(func=run_worker)


def run_worker(args: argparse.Namespace) -> int:
    """Run ``jobqueue worker``: one worker process, or ``--processes`` of them under this one."""
    if args.processes < 1:
        raise ValidationError("processes", "must be >= 1")
    if not math.isfinite(args.burst_wait) or args.burst_wait < 0:
        raise ValidationError("burst-wait", "must be a finite number of seconds >= 0")
    _check_child_limits(args)
    if args.processes > 1:
        if args.burst:
            raise ValidationError("burst", "runs one worker process: use it without --processes")
        return _worker_processes(args)
    from jobqueue.worker.startup import collector_paused  # noqa: PLC0415

    # What is loaded here lives as long as the process: no garbage collection while loading it, and
    # frozen afterwards, before the process pool forks (worker/startup.py).
    with collector_paused():
        from jobqueue.app import load_app  # noqa: PLC0415

        app = load_app(args.app)
        if args.pool == "process":
            from jobqueue.worker.process_pool import ProcessPool  # noqa: PLC0415 - the process pool only
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    pool: ProcessPool | ThreadPool | AsyncPool
    if args.pool == "process":
        # The children log in the parent's format: one worker's lines must not mix JSON and text.
        pool = ProcessPool(
            args.app,
            args.concurrency,
            logging.getLogger().level,
            resolve_format(args.log_format),
            _child_limits(args, app.settings),
            # The fork server's children re-run the `jobqueue` console script, whose module that is.
            forkserver_preload=["jobqueue.cli.main"],
        )
        # The first children are forked from here, now: single-threaded, nothing connected yet, and
        # before this process imports the worker's own modules below, so the children run their start
        # (the app, their start hook) while it does, on the other core.
        pool.prefork()
    elif args.pool == "thread":
        from jobqueue.worker.thread_pool import ThreadPool  # noqa: PLC0415 - the thread pool only

        pool = ThreadPool(app, args.concurrency)
    else:
        from jobqueue.worker.async_pool import AsyncPool  # noqa: PLC0415 - the asyncio pool only

        pool = AsyncPool(app, args.concurrency)
    try:
        return _run(args, app, pool, queues)
    except BaseException:
        # The process pool's children ignore SIGTERM (the worker owns shutdown), which is what Python's
        # exit sends daemon children before it waits for them: a worker that failed to start, or whose
        # run (its drain included) raised, hung for ever instead of exiting to be restarted.
        pool.stop()
        raise


def _run(
    args: argparse.Namespace, app: App, pool: ProcessPool | ThreadPool | AsyncPool, queues: list[str]
) -> int:
    """Build the worker around its started pool and run it; the exit code."""
    from jobqueue.worker.burst import Burst  # noqa: PLC0415
    from jobqueue.worker.health import LivenessFile  # noqa: PLC0415
    from jobqueue.worker.redis_at_start import build_when_redis_answers  # noqa: PLC0415
    from jobqueue.worker.runtime import Worker, default_worker_id  # noqa: PLC0415

    burst = Burst(args.burst_wait) if args.burst else None
    # One id for the wait and the worker: the liveness file touched while waiting is the worker's own.
    worker_id = args.worker_id or default_worker_id(app.settings.pod_name)
    worker: Worker = build_when_redis_answers(
        lambda: Worker(
            app,
            pool,
            queues,
            worker_id=worker_id,
            grace_seconds=args.grace,
            prefetch=args.prefetch,
            before_fetching=_start_gate(args.start_gate, lambda: worker.stopping),
            burst=burst,
        ),
        LivenessFile(app.settings.health_dir, worker_id),
        app.settings.redis_startup_wait_seconds,
    )
    worker.install_signal_handlers()
    if args.parent_pid is not None:
        _follow_parent(args.parent_pid, worker.stop)
    code = worker.run()
    if burst is not None:
        print(burst.summary().line(), flush=True)
    return code


def _check_child_limits(args: argparse.Namespace) -> None:
    for flag, value in (
        ("max-tasks-per-child", args.max_tasks_per_child),
        ("max-memory-per-child-mb", args.max_memory_per_child_mb),
    ):
        if value is None:
            continue
        if args.pool != "process":
            raise ValidationError(flag, "only the process pool has child processes to replace")
        if value < 1:
            raise ValidationError(flag, "must be >= 1")


def _child_limits(args: argparse.Namespace, settings: Settings) -> ChildLimits:
    """The process pool's child limits: a flag wins over its JOBQUEUE_ setting."""
    from jobqueue.worker.child_recycling import ChildLimits  # noqa: PLC0415

    max_tasks = args.max_tasks_per_child or settings.max_tasks_per_child
    max_mb = args.max_memory_per_child_mb or settings.max_memory_per_child_mb
    return ChildLimits(max_tasks, max_mb * 1024 * 1024 if max_mb else None)


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
    from jobqueue.app import load_app  # noqa: PLC0415
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
    if args.max_tasks_per_child is not None:
        worker_args += ["--max-tasks-per-child", str(args.max_tasks_per_child)]
    if args.max_memory_per_child_mb is not None:
        worker_args += ["--max-memory-per-child-mb", str(args.max_memory_per_child_mb)]

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
