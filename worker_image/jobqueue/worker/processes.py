"""``jobqueue worker --processes N``: one parent running N full worker processes.

One worker process runs on one interpreter lock, so a no-op task load is bound by one core however many
threads its pool has; N processes each have their own lock. Each child is a complete ``jobqueue worker``
(its own Redis connections, pool, heartbeat, leases, hand-off inbox) started as
``python -m jobqueue worker ... --worker-id <base>_<i>`` with plain arguments: nothing is pickled and
nothing is inherited but the environment. The ids follow jobqueue.worker_ids, so the operator maps every
child back to its pod.

The parent holds no task. It forwards SIGTERM / SIGINT to every child (each drains within its own
``--grace``), waits for them, and exits 0 when they all drained cleanly.

A child that dies on its own (crash, OOM kill, SIGKILL) is restarted under the same id, after its leases
are recovered at once (the parent knows it is dead, no need to wait for lease expiry). Restarting one
child beats failing the pod: its siblings keep serving and finish their tasks, where a container restart
would stop them all; and reusing the id is safe because every lease is fenced by its attempt number and a
hand-off inbox entry is re-checked against the task's lease before it is taken (lua/fetch.lua), so
nothing the dead child held can be completed twice. A child that keeps dying (``MAX_RESTARTS`` within
``RESTART_WINDOW_SECONDS``: a broken app, a Redis it cannot use) is not restarted forever: the parent then
drains the others and exits non-zero, so Kubernetes shows the pod failing (CrashLoopBackOff) instead of a
pod that looks healthy with fewer workers. A child that exits 0 by itself was drained on request
(``Client.request_drain(exit=True)``) and is not restarted; the parent exits once all children have.

The first children start together: each gets up (app, pool, Redis, heartbeat) and then waits at a start
gate (two pipes) until every sibling is up, at most ``START_GATE_SECONDS``. Without it, the child that
happens to boot first takes a waiting backlog alone (its siblings' imports compete with it for the same
cores and finish hundreds of milliseconds later, measured on 2 cores: one child ran all 3,000 tasks of a
preloaded queue before the other logged in). A restarted child joins at once.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from jobqueue.supervision import LoopGuard, RestartPolicy
from jobqueue.worker_ids import process_worker_id

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_SECONDS = 60.0
# A child's drain is bounded by its own --grace and its ack flush (max(5 s, grace / 2)); past that plus
# this margin the parent kills it (Kubernetes would SIGKILL the whole pod at its grace period anyway).
STOP_MARGIN_SECONDS = 10.0
POLL_SECONDS = 0.2
# Longest the first children wait for a slow sibling at the start gate before serving anyway.
START_GATE_SECONDS = 30.0
# The parent's supervision loop after an unexpected failure (a child that cannot be started: no memory,
# no pids left): retried with a backoff, and past the bound the parent drains the rest and exits non-zero.
PARENT_RESTARTS = RestartPolicy(initial_delay=0.2, max_delay=5.0, max_failures=5)


class ChildAction(enum.StrEnum):
    """What the parent does about a child that exited."""

    DONE = "done"  # expected: it drained (on our SIGTERM or on a drain request); not restarted
    RESTART = "restart"  # died on its own: recover its leases, start it again under the same id
    GIVE_UP = "give_up"  # dies too often: drain the rest and exit non-zero


def on_child_exit(
    code: int,
    *,
    stopping: bool,
    recent_restarts: Sequence[float],
    now: float,
    max_restarts: int = MAX_RESTARTS,
    window_seconds: float = RESTART_WINDOW_SECONDS,
) -> ChildAction:
    """Decide about a child that exited with ``code`` (negative: killed by that signal).

    ``recent_restarts`` are the moments (same clock as ``now``) this parent restarted any child.
    """
    if stopping or code == 0:
        return ChildAction.DONE
    if sum(1 for moment in recent_restarts if now - moment < window_seconds) >= max_restarts:
        return ChildAction.GIVE_UP
    return ChildAction.RESTART


def child_command(
    worker_args: Sequence[str], worker_id: str, parent_pid: int, gate: tuple[int, int] | None = None
) -> list[str]:
    """The command line of one child: the parent's worker arguments (without --processes / --worker-id),
    its own id, the parent to follow (a child exits when its parent is gone) and, for the first children,
    the start gate's file descriptors (ready to write, go to read)."""
    command = [
        sys.executable,
        "-m",
        "jobqueue",
        *worker_args,
        "--worker-id",
        worker_id,
        "--parent-pid",
        str(parent_pid),
    ]
    if gate is not None:
        command += ["--start-gate", f"{gate[0]},{gate[1]}"]
    return command


def wait_at_start_gate(gate: str, stopping: Callable[[], bool]) -> None:
    """Child side of the start gate (``--start-gate READY_FD,GO_FD``): say "up", then wait for "go".

    Returns early when the worker is stopping, when the parent closed the gate without a "go" (it died),
    or after START_GATE_SECONDS: a gate must never keep a worker from serving for good.
    """
    ready_fd, go_fd = (int(fd) for fd in gate.split(","))
    try:
        os.write(ready_fd, b"1")
        os.close(ready_fd)
        deadline = time.monotonic() + START_GATE_SECONDS
        while not stopping() and time.monotonic() < deadline:
            readable, _, _ = select.select([go_fd], [], [], POLL_SECONDS)
            if readable:
                os.read(go_fd, 1)  # one byte per child; b"" (parent gone) opens it as well
                return
    finally:
        os.close(go_fd)


@dataclass
class Child:
    """One running worker process."""

    worker_id: str
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)


class WorkerProcesses:
    """The parent of ``processes`` worker processes (see the module docstring)."""

    def __init__(
        self,
        worker_args: Sequence[str],
        *,
        base_id: str,
        processes: int,
        grace_seconds: float,
        recover_leases: Callable[[str], None],
    ) -> None:
        self.worker_args = list(worker_args)
        self.worker_ids = [process_worker_id(base_id, i, processes) for i in range(processes)]
        self.grace_seconds = grace_seconds
        self.recover_leases = recover_leases
        self.children: dict[str, Child] = {}
        self.restarts: list[float] = []
        self._stop = threading.Event()
        self._failed = False
        # Ids of children that died and are to be started again (see _supervise_once).
        self._respawn: list[str] = []

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT drain every child."""

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info(
                "signal %s: draining %d worker process(es)", signal.Signals(signum).name, len(self.children)
            )
            self._stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def stop(self) -> None:
        """Drain every child and return from :meth:`run` (what SIGTERM does)."""
        self._stop.set()

    def _spawn(self, worker_id: str, gate: tuple[int, int] | None = None) -> None:
        command = child_command(self.worker_args, worker_id, os.getpid(), gate)
        process = subprocess.Popen(command, pass_fds=gate or ())
        self.children[worker_id] = Child(worker_id, process)
        log.info("started worker process %s (pid %d)", worker_id, process.pid)

    def run(self) -> int:
        """Start the children and supervise them until stopped; the exit code (0: all drained cleanly)."""
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        for worker_id in self.worker_ids:
            self._spawn(worker_id, (ready_w, go_r))
        # Only the children hold these ends now: a ready pipe at EOF means every child has said up or died.
        os.close(ready_w)
        os.close(go_r)
        gate = _ParentGate(ready_r, go_w, len(self.worker_ids))
        codes: dict[str, int] = {}
        guard = LoopGuard("worker processes parent", PARENT_RESTARTS)
        while (self.children or self._respawn) and not self._stop.is_set():
            try:
                self._supervise_once(gate, codes)
                guard.succeeded()
            except Exception as exc:
                delay = guard.failed(exc)
                if delay is None:
                    self._failed = True
                    break
                self._stop.wait(delay)
        gate.open()
        codes.update(self._stop_children())
        if self._failed:
            return next((code for code in codes.values() if code > 0), 1)
        return 0 if all(code == 0 for code in codes.values()) else 1

    def _supervise_once(self, gate: _ParentGate, codes: dict[str, int]) -> None:
        """One poll: note exited children and act on each; start again those a failure left unstarted."""
        if gate.waiting:
            gate.poll(POLL_SECONDS)
        else:
            self._stop.wait(POLL_SECONDS)
        for worker_id, child in list(self.children.items()):
            code = child.process.poll()
            if code is not None:
                codes[worker_id] = code
                self._child_exited(child, code)
        while self._respawn:
            # Removed only once started: a start that fails leaves it here for the next attempt.
            self._spawn(self._respawn[0])
            self._respawn.pop(0)

    def _child_exited(self, child: Child, code: int) -> None:
        del self.children[child.worker_id]
        now = time.monotonic()
        # Only restarts within the window count (on_child_exit): older ones are forgotten, not kept forever.
        self.restarts = [moment for moment in self.restarts if now - moment < RESTART_WINDOW_SECONDS]
        action = on_child_exit(code, stopping=self._stop.is_set(), recent_restarts=self.restarts, now=now)
        if action is ChildAction.DONE:
            log.info("worker process %s exited (%d)", child.worker_id, code)
            return
        log.warning("worker process %s died (exit %d)", child.worker_id, code)
        # Known dead: its tasks go back now, not when their leases expire; before the replacement starts
        # under the same id, so no lease of the new process is ever taken for the old one's.
        self._recover(child.worker_id)
        if action is ChildAction.GIVE_UP:
            log.error(
                "worker processes died %d times within %.0f s: draining the rest and exiting",
                len(self.restarts),
                RESTART_WINDOW_SECONDS,
            )
            self._failed = True
            self._stop.set()
            return
        self.restarts.append(now)
        self._respawn.append(child.worker_id)

    def _recover(self, worker_id: str) -> None:
        try:
            self.recover_leases(worker_id)
        except Exception as exc:  # the leases still expire and get recovered later
            log.warning("could not recover the leases of %s now: %s", worker_id, exc)

    def _stop_children(self) -> dict[str, int]:
        """SIGTERM every child, wait for their drain, kill those past the deadline; their exit codes."""
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        flush = max(5.0, self.grace_seconds / 2)
        deadline = time.monotonic() + self.grace_seconds + flush + STOP_MARGIN_SECONDS
        codes = {}
        for worker_id, child in self.children.items():
            try:
                codes[worker_id] = child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker process %s did not drain in time; killing it", worker_id)
                child.process.kill()
                codes[worker_id] = child.process.wait()
                self._recover(worker_id)
        self.children.clear()
        return codes


class _ParentGate:
    """Parent side of the start gate: count the children's "up" bytes, then let them all go at once."""

    def __init__(self, ready_fd: int, go_fd: int, children: int) -> None:
        self.ready_fd = ready_fd
        self.go_fd = go_fd
        self.children = children
        self.up = 0
        self.deadline = time.monotonic() + START_GATE_SECONDS
        self.waiting = True

    def poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` for children to say up; open the gate when all have (or died: EOF), or
        past the deadline."""
        readable, _, _ = select.select([self.ready_fd], [], [], timeout)
        if readable:
            got = os.read(self.ready_fd, 64)
            self.up += len(got)
            if not got:  # every child closed its end: up, or died before
                self.up = self.children
        if self.up >= self.children or time.monotonic() >= self.deadline:
            self.open()

    def open(self) -> None:
        """Let every child waiting at the gate go (idempotent)."""
        if not self.waiting:
            return
        self.waiting = False
        log.info("%d of %d worker process(es) up: start", self.up, self.children)
        with contextlib.suppress(OSError):  # no child reads any more (all gone): nothing to open
            os.write(self.go_fd, b"1" * self.children)
        os.close(self.go_fd)
        os.close(self.ready_fd)
