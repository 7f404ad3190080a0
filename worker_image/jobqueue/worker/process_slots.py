"""The process pool's view of one child: its slot (what it runs, what waits ahead, its limits) and how
an outcome is read from it, or made up for it when it is gone."""

from __future__ import annotations

import contextlib
import json
import multiprocessing.connection as mpc
import os
import signal
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.errors import TaskTimeout, WorkerCrashed
from jobqueue.worker.execution import describe
from jobqueue.worker.process_child import CancelArray
from jobqueue.worker.process_wait import ChildWait


@dataclass
class Slot:
    """One child process of the pool and what the pool knows of it."""

    process: BaseProcess
    conn: mpc.Connection
    cancels: CancelArray
    ready: bool = False
    job: Job | None = None  # running in the child
    serial: int = 0  # the serial of the last job sent to the child
    ahead: Job | None = None  # sent to the child, to start when ``job`` ends
    hard_deadline: float | None = None
    kill_as: OutcomeKind | None = None
    tasks_done: int = 0
    waiting: ChildWait | None = None  # the worker's idle wait, running in this (idle) child
    extra: dict[str, Any] = field(default_factory=dict)


def read_outcome(slot: Slot, job: Job) -> tuple[Outcome | None, bool]:
    """The job's outcome (None while it runs), and whether the child reported it (False: the child is
    gone and the outcome says why)."""
    try:
        if slot.conn.poll():
            return Outcome.from_json(json.loads(slot.conn.recv_bytes())), True
    except (EOFError, OSError):
        pass
    if slot.process.is_alive():
        return None, False
    slot.process.join(timeout=1)
    return death_outcome(job, slot.kill_as, slot.process.exitcode), False


def death_outcome(job: Job, kill_as: OutcomeKind | None, exitcode: int | None) -> Outcome:
    """The outcome of a job whose child is gone without reporting it: killed by the pool (``kill_as``)
    or died (crashed)."""
    if kill_as == OutcomeKind.TIMEOUT:
        exc: Exception = TaskTimeout(f"hard time limit of {job.timeout}s exceeded; process killed")
        return Outcome(job.id, job.token, OutcomeKind.TIMEOUT, error=describe(exc), retryable=True)
    if kill_as == OutcomeKind.CANCELLED:
        return Outcome(job.id, job.token, OutcomeKind.CANCELLED, error="TaskCancelled: force-cancelled")
    exc = WorkerCrashed(f"task process exited with code {exitcode}")
    return Outcome(job.id, job.token, OutcomeKind.CRASHED, error=describe(exc), retryable=True)


def kill(process: BaseProcess) -> None:
    """SIGKILL a child that is still alive."""
    if process.is_alive() and process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
