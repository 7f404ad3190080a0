"""The process pool's side of the idle wait run in a child (worker/process_wait.py): handing the wait to
an idle child, and booking what it popped into that child's slot. A part of
:class:`jobqueue.worker.process_pool.ProcessPool`, which sets up the state it declares."""

from __future__ import annotations

import logging
import threading
import time

from jobqueue.errors import WorkerCrashed
from jobqueue.worker.process_slots import Slot, kill
from jobqueue.worker.process_wait import ChildWait

log = logging.getLogger(__name__)

# A child given the idle wait reports within its BLPOP timeout; one that has not this long after it is
# killed (and replaced), so the fetch loop waiting for it can never hang.
WAIT_MARGIN_SECONDS = 5.0


class IdleWaits:
    """Idle waits in the children of a process pool (state set up by ProcessPool.__init__)."""

    _slots: list[Slot]
    _lock: threading.Lock
    _stopping: bool

    def _replace(self, index: int) -> None:
        raise NotImplementedError  # ProcessPool: kill the slot's child and start another

    def wait_in_child(self, wait: ChildWait) -> bool:
        """Run the worker's idle wait in an idle child (worker/process_wait.py) and block until it is
        over; False at once when no child is idle and ready."""
        with self._lock:
            slot = next((s for s in self._slots if s.job is None and s.waiting is None and s.ready), None)
            if slot is None or self._stopping:
                return False
            slot.waiting = wait
            # The serial a handed-off job gets: nothing else is sent to a waiting child.
            slot.conn.send_bytes(wait.message(slot.serial + 1))
        if not wait.done.wait(wait.seconds + WAIT_MARGIN_SECONDS):
            with self._lock:
                if slot.waiting is wait:
                    log.warning("child process %s did not end its idle wait: killing it", slot.process.pid)
                    kill(slot.process)  # the monitor replaces it and ends the wait
            if not wait.done.wait(WAIT_MARGIN_SECONDS):
                raise WorkerCrashed(f"child process {slot.process.pid} did not end its idle wait")
        if wait.error is not None:
            raise wait.error
        return True

    def _end_wait(self, index: int) -> None:
        """Read a waiting child's report; after a hand-off, book the job it now runs as its own. Lock held.
        A child that died waiting is replaced (a task it had popped is recovered with its lease)."""
        slot = self._slots[index]
        wait = slot.waiting
        assert wait is not None  # the caller checked
        try:
            data = slot.conn.recv_bytes() if slot.conn.poll() else None
        except (EOFError, OSError):
            data = None
        if data is None:
            if slot.process.is_alive():
                return  # named for nothing yet
            slot.waiting = None
            self._replace(index)
            wait.finish()
            return
        slot.waiting = None
        popped = wait.report(data)
        if popped is None:
            wait.finish()
            return
        try:
            job, capacity_left = wait.adopt(*popped)
        except Exception as exc:
            # Not booked, so not this worker's to run: stop it (its lease expires and is recovered).
            log.exception("could not book a task handed to an idle child; killing the child")
            self._replace(index)
            wait.error = exc
            wait.finish()
            return
        slot.serial += 1
        slot.job = job
        slot.kill_as = None
        slot.hard_deadline = time.monotonic() + job.timeout if job.timeout else None
        wait.finish((popped[0], capacity_left))
