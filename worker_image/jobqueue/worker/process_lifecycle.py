"""The process pool's children from birth to death: starting one (forked ahead from the worker process, or
from the fork server), knowing when it is up, watching its pipe and sentinel, replacing one that died or
was killed, and retiring one past its task or memory limit (worker/child_recycling.py decides which).

A part of :class:`jobqueue.worker.process_pool.ProcessPool`, which sets up the state it declares; the
pool's own module keeps what it does with the children (assigning jobs, reading outcomes).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection as mpc
import os
import selectors
import sys
import threading
import time
from multiprocessing.context import ForkContext, ForkServerContext
from multiprocessing.process import BaseProcess

from jobqueue.errors import WorkerCrashed
from jobqueue.worker.child_recycling import ChildLimits, resident_bytes, retirement_reason
from jobqueue.worker.process_child import child_main
from jobqueue.worker.process_slots import Slot, kill

log = logging.getLogger(__name__)

# A retired child gets this long to run its stop hook (close a database pool) and exit by itself before it
# is killed; it holds no task by then, so killing it loses nothing.
RETIRE_GRACE_SECONDS = 10.0


class ChildLifecycle:
    """Starting, replacing and retiring the children of a process pool (state set up by ProcessPool)."""

    app_spec: str
    concurrency: int
    limits: ChildLimits
    log_level: int
    log_format: str
    _ctx: ForkServerContext
    _slots: list[Slot]
    _retiring: list[tuple[BaseProcess, float]]
    _wakeup_r: mpc.Connection
    _wakeup_w: mpc.Connection
    _selector: selectors.BaseSelector

    def prefork(self) -> bool:
        """Fork the first children from this process now, if it is single-threaded: they start with
        jobqueue and the app already imported (about 10 ms each, against the fork server's import of
        jobqueue, which the first task would otherwise wait for). Call it right after loading the app,
        before anything connects to Redis or runs a start hook, so no child inherits a connection (the
        children run their own start hook, as ever). Replacement children, started while the worker
        runs its threads, always come from the fork server. Returns whether it forked."""
        if self._slots or threading.active_count() > 1:
            return False
        # Buffered output not yet written would be written again by every child.
        sys.stdout.flush()
        sys.stderr.flush()
        fork = multiprocessing.get_context("fork")
        for _ in range(self.concurrency):
            # A forked child inherits every descriptor: the pool's ends of its siblings' pipes (and its
            # own) would keep them open, so a child would never see EOF when the pool closes its pipe.
            inherited = [self._wakeup_r.fileno(), self._wakeup_w.fileno()]
            inherited += [slot.conn.fileno() for slot in self._slots]
            self._slots.append(self._spawn(fork, inherited))
        return True

    def _spawn(
        self, ctx: ForkContext | ForkServerContext | None = None, inherited: list[int] | None = None
    ) -> Slot:
        ctx = ctx or self._ctx
        parent_conn, child_conn = ctx.Pipe()
        cancels = ctx.RawArray("q", 2)
        close = [*inherited, parent_conn.fileno()] if inherited is not None else []
        process = ctx.Process(
            target=child_main,
            args=(
                self.app_spec,
                child_conn,
                cancels,
                self.log_level,
                self.log_format,
                dict(os.environ),
                close,
            ),
            daemon=True,
        )
        process.start()
        child_conn.close()
        return Slot(process, parent_conn, cancels)

    def _await_ready(self, slot: Slot, timeout: float) -> None:
        if not slot.conn.poll(timeout):
            raise WorkerCrashed(f"child process {slot.process.pid} did not start within {timeout} s")
        try:
            slot.conn.recv_bytes()
        except EOFError as exc:
            raise WorkerCrashed(f"child process exited at start (exit code {slot.process.exitcode})") from exc
        slot.ready = True

    def _watch(self, slot: Slot) -> None:
        self._selector.register(slot.conn, selectors.EVENT_READ, slot)
        self._selector.register(slot.process.sentinel, selectors.EVENT_READ, slot)

    def _unwatch(self, slot: Slot) -> None:
        for fileobj in (slot.conn, slot.process.sentinel):
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(fileobj)

    def _replace(self, index: int) -> None:
        """Kill and reap the child of a slot and start a new one in its place. Lock held."""
        slot = self._slots[index]
        self._unwatch(slot)
        kill(slot.process)
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
                kill(process)
            process.join(timeout=1)
        self._retiring = still
