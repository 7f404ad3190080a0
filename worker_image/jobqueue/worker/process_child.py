"""The process pool's child side: how children are started (a preloaded fork server) and what they run.

Children are started with the 'forkserver' method: a clean, single-threaded server process imports
jobqueue once (:func:`start_forkserver`, called as the worker command starts, so those imports overlap the
worker's own start-up) and forks every child from there. No child is ever forked from the worker itself,
which holds threads and sockets; and no child pays the ~0.4 s of imports a 'spawn' child pays (on two
cores, four spawned children made the default worker's cold start about 1.1 s).

The wire is JSON over a pipe, one message per job and per outcome (and per idle wait the worker hands
a child, with the child's report of it: worker/process_wait.py). A child may be sent its next job while
it runs the current one (worker/process_pool.py queues one ahead), so it starts the next one the moment
the current one ends, without waiting for the worker process to be scheduled. Cancellation is therefore
per job, not per child: each job carries a serial number, and the parent cancels it by writing that
number into the child's two-entry cancel array (entry serial % 2: at most two jobs of one child are
outstanding, and they have consecutive serials).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import multiprocessing
import multiprocessing.connection as mpc
import multiprocessing.forkserver
import os
import signal
import sys
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from types import FrameType
from typing import Any, Final

import redis

from jobqueue.app import load_app
from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.broker.redis_io import connect
from jobqueue.errors import SoftTimeout
from jobqueue.hooks import HookKind
from jobqueue.log_config import configure_logging
from jobqueue.worker.execution import run_job
from jobqueue.worker.process_wait import WaitFailed, is_wait_message, wait_in_child
from jobqueue.worker.progress import ProgressSink

log = logging.getLogger(__name__)

# What the fork server imports once, before it forks any child: everything child_main needs. The app's own
# module is not among them: it would be built once, with the environment of the moment the server started,
# and shared by every later pool of the process; each child imports it itself (cheap once jobqueue is in).
CHILD_MODULES = ("jobqueue.worker.process_child",)
START_METHOD: Final = "forkserver"
# The Redis client name of a child's idle-wait connection (worker/process_wait.py), then "-<pid>".
CHILD_WAIT_CLIENT: Final = "jobqueue-child-wait"

# A child's cancel array: entry serial % 2 holds the serial of a job the parent cancelled.
CancelArray = MutableSequence[int]


def start_forkserver(extra_modules: Sequence[str] = ()) -> None:
    """Start the fork server the process pool's children are forked from, preloaded with jobqueue (and
    ``extra_modules``: the entry point's own module, which every child re-imports as ``__mp_main__``
    when the worker runs as a console script). It returns at once; the server imports in parallel with
    the caller. Idempotent: a later call (or a later pool in the same process) reuses the running one."""
    ctx = multiprocessing.get_context(START_METHOD)
    ctx.set_forkserver_preload([*CHILD_MODULES, *extra_modules])
    multiprocessing.forkserver.ensure_running()


def job_message(serial: int, job: Job) -> bytes:
    """What the parent sends a child for one job."""
    return json.dumps({"serial": serial, "job": job.to_json()}).encode()


def cancel_job(cancels: CancelArray, serial: int) -> None:
    """Mark job ``serial`` of a child cancelled (read by the child, before and while it runs it)."""
    cancels[serial % 2] = serial


def _raise_soft_timeout(signum: int, frame: FrameType | None) -> None:
    # Logged as well as raised: a task may catch SoftTimeout and carry on, and the operator of the worker
    # should still see that it ran past its soft limit. A Python-level handler runs between bytecodes of
    # the main thread, and logging's handler locks are re-entrant, so this cannot deadlock.
    log.warning("task reached its soft time limit: raising SoftTimeout in it")
    raise SoftTimeout("soft time limit reached")


def child_main(  # noqa: PLR0917 - multiprocessing passes a target's arguments positionally
    app_spec: str,
    conn: mpc.Connection,
    cancels: CancelArray,
    log_level: int,
    log_format: str = "text",
    environ: Mapping[str, str] | None = None,
    close_fds: Sequence[int] = (),
) -> None:
    """Entry point of a child: import the app, then run jobs received on ``conn`` until it closes.
    ``close_fds``: descriptors a child forked from the worker itself inherited and must not hold."""
    for fd in close_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    if environ is not None:
        # A forked child has the fork server's environment, fixed when the server started; a child must
        # see the worker's environment of now, as a spawned child would (the app's settings read it).
        os.environ.clear()
        os.environ.update(environ)
    # The parent owns shutdown; a Ctrl-C or SIGTERM sent to the whole process group must not kill a
    # task halfway before the parent decides to hand it back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _raise_soft_timeout)
    _die_with_parent()
    configure_logging(log_level, log_format)
    app = load_app(app_spec)
    registry = app.registry
    hooks = app.hooks if app.hooks.has_task_hooks() else None
    # The child's own client (made at its first progress write): connections are never shared across a fork.
    progress = ProgressSink(lambda: app.client.redis, app.settings)
    # Each child is a process that serves tasks: its own start hook (a database pool, an error reporter
    # of its own), run before it says ready, so no task runs before it.
    app.hooks.run(HookKind.WORKER_START)
    default_timeout = app.settings.effective_default_timeout
    # This child's own connection for the idle wait, made at its first one (never shared across a fork).
    blocking: redis.Redis | None = None
    conn.send_bytes(b'{"ready": true}')
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            # The parent closed the pipe: a drain (a child killed mid-task runs no stop hook).
            app.hooks.run(HookKind.WORKER_STOP)
            return
        message: dict[str, Any] = json.loads(data)
        if is_wait_message(message):
            # The worker's idle wait, run here so a handed-off task starts in this process (process_wait.py).
            if blocking is None:
                blocking = connect(app.settings, single_connection=True)
                # Named, so CLIENT LIST tells which child of which worker waits on an inbox.
                blocking.client_setname(f"{CHILD_WAIT_CLIENT}-{os.getpid()}")
            try:
                handed = wait_in_child(message["wait"], blocking, conn.send_bytes, default_timeout)
            except WaitFailed:
                # A connection that failed mid-reply is not reused: the next wait opens (and names) another.
                blocking.close()
                blocking = None
                continue
            if handed is None:
                continue
            serial, job = handed
        else:
            serial = message["serial"]
            job = Job.from_fields(message["job"])  # the parent's own to_json: every field, typed
        is_cancelled = _cancel_check(cancels, serial)
        if is_cancelled():
            # Cancelled while it waited in this child's pipe: it never starts (no hooks, as a task that
            # never ran gets none).
            outcome = Outcome(
                job.id, job.token, OutcomeKind.CANCELLED, error="TaskCancelled: cancelled before it started"
            )
        else:
            if job.soft_timeout:
                signal.setitimer(signal.ITIMER_REAL, job.soft_timeout)
            try:
                outcome = run_job(registry, job, is_cancelled, hooks, progress)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        conn.send_bytes(json.dumps(outcome.to_json()).encode())


def _cancel_check(cancels: CancelArray, serial: int) -> Callable[[], bool]:
    slot = serial % 2
    return lambda: cancels[slot] == serial


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this child when its parent dies, even by SIGKILL, so an orphan never
    finishes a task whose lease is about to be recovered and run elsewhere. The parent is the fork
    server, which exits as soon as the worker process is gone (its end of the server's alive pipe
    closes), so the child follows the worker."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)
