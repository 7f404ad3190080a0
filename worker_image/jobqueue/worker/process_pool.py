"""The process pool (default): one child process per slot, crash isolation, real hard timeouts.

Children are started with the 'spawn' method (never fork a process that holds threads and sockets) and
talk to the parent over pipes in JSON. A child that times out, is force-cancelled or dies is replaced; so is
a child past its task or memory limit (worker/child_recycling.py), between two tasks, never during one.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import multiprocessing
import multiprocessing.connection as mpc
import os
import selectors
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.errors import SoftTimeout, TaskTimeout, WorkerCrashed
from jobqueue.hooks import HookKind
from jobqueue.log_config import configure_logging
from jobqueue.supervision import GiveUp, RestartPolicy, supervised_thread
from jobqueue.worker.child_recycling import ChildLimits, resident_bytes, retirement_reason
from jobqueue.worker.execution import describe
from jobqueue.worker.pool import OutcomeCallback

log = logging.getLogger(__name__)

# The monitor's state lives in the slots, so it may be run again after a failure (a replacement child
# that would not start, a pipe in a bad state); if it keeps failing, nobody reads the children's outcomes
# any more, and the worker must exit rather than heartbeat over tasks that can never finish.
MONITOR_RESTARTS = RestartPolicy(initial_delay=0.1, max_delay=2.0, max_failures=5)

# A retired child gets this long to run its stop hook (close a database pool) and exit by itself before it
# is killed; it holds no task by then, so killing it loses nothing.
RETIRE_GRACE_SECONDS = 10.0


def _raise_soft_timeout(signum: int, frame: FrameType | None) -> None:
    # Logged as well as raised: a task may catch SoftTimeout and carry on, and the operator of the worker
    # should still see that it ran past its soft limit. A Python-level handler runs between bytecodes of
    # the main thread, and logging's handler locks are re-entrant, so this cannot deadlock.
    log.warning("task reached its soft time limit: raising SoftTimeout in it")
    raise SoftTimeout("soft time limit reached")


def child_main(
    app_spec: str, conn: mpc.Connection, cancel_flag: Event, log_level: int, log_format: str = "text"
) -> None:
    """Entry point of a child: import the app, then run jobs received on ``conn`` until it closes."""
    # The parent owns shutdown; a Ctrl-C or SIGTERM sent to the whole process group must not kill a
    # task halfway before the parent decides to hand it back.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _raise_soft_timeout)
    _die_with_parent()
    configure_logging(log_level, log_format)
    from jobqueue.app import load_app  # noqa: PLC0415 - the child imports the app after the fork point
    from jobqueue.worker.execution import run_job  # noqa: PLC0415
    from jobqueue.worker.progress import ProgressSink  # noqa: PLC0415

    app = load_app(app_spec)
    registry = app.registry
    hooks = app.hooks if app.hooks.has_task_hooks() else None
    # The child's own client (made at its first progress write): connections are never shared across a fork.
    progress = ProgressSink(lambda: app.client.redis, app.settings)
    # Each child is a process that serves tasks: its own start hook (a database pool, an error reporter
    # of its own), run before it says ready, so no task runs before it.
    app.hooks.run(HookKind.WORKER_START)
    conn.send_bytes(b'{"ready": true}')
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            # The parent closed the pipe: a drain (a child killed mid-task runs no stop hook).
            app.hooks.run(HookKind.WORKER_STOP)
            return
        job = Job.from_fields(json.loads(data))  # the parent's own to_json: every field, typed
        cancel_flag.clear()
        if job.soft_timeout:
            signal.setitimer(signal.ITIMER_REAL, job.soft_timeout)
        try:
            outcome = run_job(registry, job, cancel_flag.is_set, hooks, progress)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        conn.send_bytes(json.dumps(outcome.to_json()).encode())


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this child when the worker process dies, even by SIGKILL, so an
    orphan never finishes a task whose lease is about to be recovered and run elsewhere."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


@dataclass
class _Slot:
    process: BaseProcess
    conn: mpc.Connection
    cancel_flag: Event
    ready: bool = False
    job: Job | None = None
    hard_deadline: float | None = None
    kill_as: OutcomeKind | None = None
    tasks_done: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class ProcessPool:
    """``concurrency`` child processes, each running one job at a time."""

    def __init__(
        self,
        app_spec: str,
        concurrency: int,
        log_level: int = logging.WARNING,
        log_format: str = "text",
        limits: ChildLimits | None = None,
    ) -> None:
        self.app_spec = app_spec
        self.concurrency = concurrency
        self.limits = limits or ChildLimits()
        # Retired children finishing their stop hook, with the monotonic time they get killed at.
        self._retiring: list[tuple[BaseProcess, float]] = []
        self.log_level = log_level
        self.log_format = log_format
        self._ctx = multiprocessing.get_context("spawn")
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._wakeup_r, self._wakeup_w = self._ctx.Pipe(duplex=False)
        self._on_outcome: OutcomeCallback | None = None
        self._on_loop_died: GiveUp | None = None
        self._stopping = False
        self._monitor: threading.Thread | None = None
        self._idle = threading.Semaphore(0)
        # One selector for the pool's life (not one built per wake-up): every child's pipe and sentinel and
        # the wake-up pipe stay registered, so a wake-up costs one epoll_wait, and only the children it
        # names are read.
        self._selector = selectors.DefaultSelector()

    def _watch(self, slot: _Slot) -> None:
        self._selector.register(slot.conn, selectors.EVENT_READ, slot)
        self._selector.register(slot.process.sentinel, selectors.EVENT_READ, slot)

    def _unwatch(self, slot: _Slot) -> None:
        for fileobj in (slot.conn, slot.process.sentinel):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(fileobj)

    def _spawn(self) -> _Slot:
        parent_conn, child_conn = self._ctx.Pipe()
        flag = self._ctx.Event()
        process = self._ctx.Process(
            target=child_main,
            args=(self.app_spec, child_conn, flag, self.log_level, self.log_format),
            daemon=True,
        )
        process.start()
        child_conn.close()
        return _Slot(process, parent_conn, flag)

    def start(self, on_outcome: OutcomeCallback, on_loop_died: GiveUp | None = None) -> None:
        """Spawn the children and wait until each has imported the app."""
        self._on_outcome = on_outcome
        self._on_loop_died = on_loop_died
        self._slots = [self._spawn() for _ in range(self.concurrency)]
        for slot in self._slots:
            self._await_ready(slot, timeout=60)
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, None)
        for slot in self._slots:
            self._watch(slot)
        self._monitor = supervised_thread(
            "jobqueue-pool", self._monitor_loop, policy=MONITOR_RESTARTS, on_give_up=on_loop_died
        )
        self._monitor.start()

    def _await_ready(self, slot: _Slot, timeout: float) -> None:
        if not slot.conn.poll(timeout):
            raise WorkerCrashed(f"child process {slot.process.pid} did not start within {timeout} s")
        try:
            slot.conn.recv_bytes()
        except EOFError as exc:
            raise WorkerCrashed(f"child process exited at start (exit code {slot.process.exitcode})") from exc
        slot.ready = True

    def submit(self, job: Job) -> None:
        """Send a job to an idle child. The monitor already watches every child's pipe, so it is woken only
        to take a hard time limit into its next wait: a job without one costs no monitor wake-up, which on
        a busy 2-core machine competed with the child's own start for a CPU."""
        self._assign(job)
        if job.timeout:
            self._wakeup_w.send_bytes(b"")

    def _assign(self, job: Job) -> None:
        with self._lock:
            slot = next(s for s in self._slots if s.job is None and s.ready)
            slot.job = job
            slot.kill_as = None
            slot.hard_deadline = time.monotonic() + job.timeout if job.timeout else None
            slot.conn.send_bytes(json.dumps(job.to_json()).encode())

    def cancel(self, task_id: str, force: bool) -> None:
        """Graceful: set the child's cancel flag. Force: kill the child (the task reports CANCELLED)."""
        with self._lock:
            for slot in self._slots:
                if slot.job is not None and slot.job.id == task_id:
                    slot.cancel_flag.set()
                    if force:
                        slot.kill_as = OutcomeKind.CANCELLED
                        _kill(slot.process)
        self._wakeup_w.send_bytes(b"")

    def running(self) -> list[Job]:
        """Jobs currently executing."""
        with self._lock:
            return [s.job for s in self._slots if s.job is not None]

    def _monitor_loop(self) -> None:
        while not self._stopping:
            with self._lock:
                deadlines = [s.hard_deadline for s in self._slots if s.job is not None and s.hard_deadline]
            timeout = 1.0
            if deadlines:
                timeout = max(0.0, min(min(deadlines) - time.monotonic(), 1.0))
            events = self._selector.select(timeout)
            if self._stopping:
                return
            self._reap_retired()
            named: set[int] = set()
            for key, _ in events:
                if key.data is None:
                    while self._wakeup_r.poll():
                        self._wakeup_r.recv_bytes()
                else:
                    named.add(id(key.data))
            self._collect(named)

    def _collect(self, named: set[int]) -> None:
        """Read the outcomes of the children the selector named (or whose hard limit passed); replace
        children that died or were killed."""
        outcomes: list[Outcome] = []
        now = time.monotonic()
        with self._lock:
            for i, slot in enumerate(self._slots):
                job = slot.job
                if job is None:
                    if id(slot) in named and not slot.process.is_alive():
                        # An idle child died (killed from outside): replace it before it is given work.
                        self._replace(i)
                    continue
                overdue = slot.hard_deadline is not None and now >= slot.hard_deadline
                if id(slot) not in named and not overdue:
                    continue
                if slot.kill_as is None and overdue:
                    slot.kill_as = OutcomeKind.TIMEOUT
                    log.warning(
                        "task %s hit its hard time limit of %ss; killing its process",
                        job.id,
                        job.timeout,
                        extra={"task_id": job.id, "queue": job.queue},
                    )
                    _kill(slot.process)
                outcome = self._read_outcome(slot, job)
                if outcome is None:
                    continue
                outcomes.append(outcome)
                slot.job = None
                slot.hard_deadline = None
                slot.tasks_done += 1
                if not slot.process.is_alive() or slot.kill_as is not None:
                    self._replace(i)
                else:
                    self._retire_if_spent(i)
        try:
            self._deliver(outcomes)
        except Exception as exc:
            # Outcomes read from their children exist nowhere else: restarting the monitor would leave
            # their tasks leased here, renewed by every heartbeat, for ever. The worker must exit.
            if not outcomes or self._on_loop_died is None:
                raise
            self._on_loop_died("jobqueue-pool", exc)

    def _deliver(self, outcomes: list[Outcome]) -> None:
        """Wait for replaced children to be up, then report each outcome and start what takes its slot."""
        for slot in self._slots:
            if not slot.ready:
                self._await_ready(slot, timeout=60)
        if self._on_outcome is not None:
            for outcome in outcomes:
                next_job = self._on_outcome(outcome)
                if next_job is not None:
                    # From the monitor thread itself: its next wait already includes this child, so no
                    # wake-up write (and no extra monitor wake-up) per task.
                    self._assign(next_job)

    def _replace(self, index: int) -> None:
        """Kill and reap the child of a slot and start a new one in its place. Lock held."""
        slot = self._slots[index]
        self._unwatch(slot)
        _kill(slot.process)
        slot.process.join(timeout=5)
        slot.conn.close()
        self._slots[index] = self._spawn()
        self._watch(self._slots[index])

    def _retire_if_spent(self, index: int) -> None:
        """Replace the (idle, healthy) child of a slot that reached its task or memory limit. Lock held.

        Its pipe is closed rather than the child killed, so it runs its stop hook and exits by itself; the
        monitor reaps it (:meth:`_reap_retired`). Its replacement is awaited by :meth:`_deliver` before
        the slot is given a task, exactly as for a crashed child."""
        slot = self._slots[index]
        rss = resident_bytes(slot.process.pid) if self.limits.watches_memory and slot.process.pid else None
        reason = retirement_reason(self.limits, slot.tasks_done, rss)
        if reason is None:
            return
        log.info("replacing child process %s: it %s", slot.process.pid, reason)
        self._unwatch(slot)
        slot.conn.close()
        self._retiring.append((slot.process, time.monotonic() + RETIRE_GRACE_SECONDS))
        self._slots[index] = self._spawn()
        self._watch(self._slots[index])

    def _reap_retired(self) -> None:
        """Join retired children that exited; kill the ones past their grace (a stop hook that hangs)."""
        now = time.monotonic()
        still: list[tuple[BaseProcess, float]] = []
        for process, kill_at in self._retiring:
            if process.is_alive() and now < kill_at:
                still.append((process, kill_at))
                continue
            if process.is_alive():
                log.warning("retired child process %s did not exit in time: killing it", process.pid)
                _kill(process)
            process.join(timeout=1)
        self._retiring = still

    def _read_outcome(self, slot: _Slot, job: Job) -> Outcome | None:
        try:
            if slot.conn.poll():
                return Outcome.from_json(json.loads(slot.conn.recv_bytes()))
        except (EOFError, OSError):
            pass
        if slot.process.is_alive():
            return None
        slot.process.join(timeout=1)
        if slot.kill_as == OutcomeKind.TIMEOUT:
            exc: Exception = TaskTimeout(f"hard time limit of {job.timeout}s exceeded; process killed")
            return Outcome(job.id, job.token, OutcomeKind.TIMEOUT, error=describe(exc), retryable=True)
        if slot.kill_as == OutcomeKind.CANCELLED:
            return Outcome(job.id, job.token, OutcomeKind.CANCELLED, error="TaskCancelled: force-cancelled")
        exc = WorkerCrashed(f"task process exited with code {slot.process.exitcode}")
        return Outcome(job.id, job.token, OutcomeKind.CRASHED, error=describe(exc), retryable=True)

    def stop(self) -> list[Job]:
        """Kill every child now; return the jobs they were running."""
        self._stopping = True
        self._wakeup_w.send_bytes(b"")
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        with self._lock:
            unfinished = [s.job for s in self._slots if s.job is not None]
            for slot in self._slots:
                if slot.job is None:
                    slot.conn.close()  # the child sees EOF and exits by itself
                    slot.process.join(timeout=2)
                _kill(slot.process)
                slot.process.join(timeout=5)
            for process, _ in self._retiring:
                _kill(process)
                process.join(timeout=5)
            self._retiring = []
            self._selector.close()
            return unfinished


def _kill(process: BaseProcess) -> None:
    if process.is_alive() and process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
