"""The process pool (default): one child process per slot, crash isolation, real hard timeouts.

The child side (how children start, what they run, the wire) is worker/process_child.py; starting,
replacing and retiring children from the pool's side is worker/process_lifecycle.py. A child that times
out, is force-cancelled or dies is replaced; so is a child past its task or memory limit
(worker/child_recycling.py), between two tasks, never during one.

One job waits ahead in each busy child while tasks are short, so the child starts it the moment the
current one ends instead of idling until the worker process reads the outcome (docs/guarantees.md, "A
job waiting ahead in a child": cancelled there it never starts; a replaced child's goes to its successor).

An idle child may also run the worker's idle wait (worker/process_wait.py): it pops the worker's inbox on
its own Redis connection and runs a handed-off task itself, and the pool books that task into its slot from
the child's report before it reads the child's outcome.
"""

from __future__ import annotations

import logging
import multiprocessing
import selectors
import threading
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess

from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.supervision import GiveUp, RestartPolicy, supervised_thread
from jobqueue.worker.child_recycling import ChildLimits
from jobqueue.worker.pool import OutcomeCallback, StartedAhead, TakeAhead
from jobqueue.worker.process_child import START_METHOD, cancel_job, job_message, start_forkserver
from jobqueue.worker.process_idle_wait import IdleWaits
from jobqueue.worker.process_lifecycle import ChildLifecycle
from jobqueue.worker.process_slots import Slot, kill, read_outcome

log = logging.getLogger(__name__)

# The monitor's state lives in the slots, so it may be run again after a failure (a replacement child
# that would not start, a pipe in a bad state); if it keeps failing, nobody reads the children's outcomes
# any more, and the worker must exit rather than heartbeat over tasks that can never finish.
MONITOR_RESTARTS = RestartPolicy(initial_delay=0.1, max_delay=2.0, max_failures=5)


class ProcessPool(ChildLifecycle, IdleWaits):
    """``concurrency`` child processes, each running one job at a time.

    ChildLifecycle comes first: its ``_replace`` is the one IdleWaits declares."""

    def __init__(
        self,
        app_spec: str,
        concurrency: int,
        log_level: int = logging.WARNING,
        log_format: str = "text",
        limits: ChildLimits | None = None,
        *,
        forkserver_preload: Sequence[str] = (),
    ) -> None:
        self.app_spec = app_spec
        self.concurrency = concurrency
        self.limits = limits or ChildLimits()
        # Modules the fork server imports besides jobqueue's (see process_child.start_forkserver).
        self.forkserver_preload = tuple(forkserver_preload)
        # Retired children finishing their stop hook, with the monotonic time they get killed at.
        self._retiring: list[tuple[BaseProcess, float]] = []
        self.log_level = log_level
        self.log_format = log_format
        self._ctx = multiprocessing.get_context(START_METHOD)
        self._take_ahead: TakeAhead | None = None
        self._started_ahead: StartedAhead | None = None
        self._slots: list[Slot] = []
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

    def queue_ahead(self, take: TakeAhead, started: StartedAhead) -> None:
        """Let one job wait ahead in each busy child (see the module docstring); call before start().
        Not with child limits: a child due for replacement after its current task must hold no other."""
        if self.limits.max_tasks is None and not self.limits.watches_memory:
            self._take_ahead, self._started_ahead = take, started

    def _send(self, slot: Slot, job: Job) -> bool:
        """Send a job to a slot's child; False when its pipe is broken (the child died, and the monitor
        will find it so). Lock held."""
        slot.serial += 1
        try:
            slot.conn.send_bytes(job_message(slot.serial, job))
        except (OSError, ValueError):
            return False
        return True

    def _fill_ahead(self, slot: Slot) -> None:
        """Give a busy child the job to start after its current one, if the worker has one. Lock held."""
        if self._take_ahead is None or slot.job is None or slot.ahead is not None or slot.kill_as is not None:
            return
        job = self._take_ahead()
        if job is not None:
            slot.ahead = job
            # Unsent when the child has just died (its task crashed it): the monitor then finds it dead
            # and starts the job ahead in the replacement, as for a job the child never began.
            self._send(slot, job)

    def start(self, on_outcome: OutcomeCallback, on_loop_died: GiveUp | None = None) -> None:
        """Start the children and wait until each has imported the app."""
        self._on_outcome = on_outcome
        self._on_loop_died = on_loop_died
        if not self._slots:
            start_forkserver(self.forkserver_preload)
            self._slots = [self._spawn() for _ in range(self.concurrency)]
        for slot in self._slots:
            self._await_ready(slot, timeout=60)
        # After pre-forked children are up, not before: its imports would compete with their start for
        # the CPU. It is needed only for replacements.
        start_forkserver(self.forkserver_preload)
        self._selector.register(self._wakeup_r, selectors.EVENT_READ, None)
        for slot in self._slots:
            self._watch(slot)
        self._monitor = supervised_thread(
            "jobqueue-pool", self._monitor_loop, policy=MONITOR_RESTARTS, on_give_up=on_loop_died
        )
        self._monitor.start()

    def submit(self, job: Job) -> None:
        """Send a job to an idle child. The monitor already watches every child's pipe, so it is woken only
        to take a hard time limit into its next wait: a job without one costs no monitor wake-up, which on
        a busy 2-core machine competed with the child's own start for a CPU."""
        self._assign(job)
        if job.timeout:
            self._wakeup_w.send_bytes(b"")

    def _assign(self, job: Job) -> None:
        with self._lock:
            idle = [s for s in self._slots if s.job is None and s.waiting is None]
            # A replacement child still starting (an idle child died) takes the job too: the pipe holds it
            # until the child is up, and the monitor restarts its hard limit then. Failing here instead
            # left the task leased, renewed by every heartbeat, and never run.
            slot = next((s for s in idle if s.ready), idle[0])
            if not self._send(slot, job):
                # The idle child died before the monitor saw it: the job never reached it. It goes to a
                # replacement (held in the pipe until the child is up), not back as a crash of an attempt
                # that never started; the monitor is woken to wait for the replacement to be ready.
                index = self._slots.index(slot)
                self._replace(index)
                slot = self._slots[index]
                self._send(slot, job)
                self._wakeup_w.send_bytes(b"")
            slot.job = job
            slot.kill_as = None
            slot.hard_deadline = time.monotonic() + job.timeout if job.timeout else None
            if slot.ready:
                self._fill_ahead(slot)

    def cancel(self, task_id: str, force: bool) -> None:
        """Graceful: set the child's cancel flag. Force: kill the child (the task reports CANCELLED)."""
        with self._lock:
            for slot in self._slots:
                if slot.ahead is not None and slot.ahead.id == task_id:
                    # Not started: it never will (force or not), and the running task is left alone.
                    cancel_job(slot.cancels, slot.serial)
                if slot.job is not None and slot.job.id == task_id:
                    cancel_job(slot.cancels, slot.serial - (slot.ahead is not None))
                    if force:
                        slot.kill_as = OutcomeKind.CANCELLED
                        kill(slot.process)
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
        promoted: list[Job] = []
        with self._lock:
            for i, slot in enumerate(self._slots):
                if not slot.ready:
                    continue  # a replacement still starting: _deliver waits for it to be up
                if slot.job is None and slot.waiting is not None and id(slot) in named:
                    self._end_wait(i)
                    if self._slots[i] is not slot:
                        continue  # it died waiting and was replaced
                if slot.job is None:
                    if id(slot) in named and not slot.process.is_alive():
                        # An idle child died (killed from outside): replace it before it is given work.
                        self._replace(i)
                    continue
                if id(slot) not in named and not self._overdue(slot):
                    continue
                self._collect_slot(i, outcomes, promoted)
        try:
            self._deliver(outcomes, promoted)
        except Exception as exc:
            # Outcomes read from their children exist nowhere else: restarting the monitor would leave
            # their tasks leased here, renewed by every heartbeat, for ever. The worker must exit.
            if not outcomes or self._on_loop_died is None:
                raise
            self._on_loop_died("jobqueue-pool", exc)

    def _overdue(self, slot: Slot) -> bool:
        return slot.hard_deadline is not None and time.monotonic() >= slot.hard_deadline

    def _collect_slot(self, index: int, outcomes: list[Outcome], promoted: list[Job]) -> None:
        """Read every outcome a slot's child has sent (two when the job ahead ended too). Lock held."""
        slot = self._slots[index]
        while (job := slot.job) is not None:
            if slot.kill_as is None and self._overdue(slot):
                slot.kill_as = OutcomeKind.TIMEOUT
                log.warning(
                    "task %s hit its hard time limit of %ss; killing its process",
                    job.id,
                    job.timeout,
                    extra={"task_id": job.id, "queue": job.queue},
                )
                kill(slot.process)
            outcome, reported = read_outcome(slot, job)
            if outcome is None:
                return
            outcomes.append(outcome)
            slot.tasks_done += 1
            # The job ahead (if any) started in the child as this one ended.
            slot.job, slot.ahead = slot.ahead, None
            slot.hard_deadline = None
            if slot.job is not None and slot.job.timeout:
                slot.hard_deadline = time.monotonic() + slot.job.timeout
            if reported and slot.kill_as is None:
                if slot.job is not None:
                    # The child ended the job itself, so it went on to the next: running now (if the
                    # child died since, the next turn reports that job CRASHED).
                    promoted.append(slot.job)
                    continue
                if slot.process.is_alive():
                    self._retire_if_spent(index)
                else:
                    self._replace(index)
                return
            # The child died in the job just read, or was killed for it (hard limit, force cancel): the job
            # ahead, not started or cut short by a kill meant for another, runs in the replacement child.
            waiting, slot.job = slot.job, None
            self._replace(index)
            if waiting is not None:
                replacement = self._slots[index]
                replacement.job = waiting
                promoted.append(waiting)
                self._send(replacement, waiting)
            return

    def _deliver(self, outcomes: list[Outcome], promoted: list[Job]) -> None:
        """Wait for replaced children to be up, then report each outcome and start what takes its slot."""
        for slot in self._slots:
            if not slot.ready:
                self._await_ready(slot, timeout=60)
                if slot.job is not None and slot.job.timeout:
                    # A job given to the replacement: its time runs from now, once the child is up.
                    slot.hard_deadline = time.monotonic() + slot.job.timeout
        if self._started_ahead is not None:
            # First: the slots these jobs run in are not free, so no outcome below hands them another.
            for job in promoted:
                self._started_ahead(job)
        if self._on_outcome is not None:
            for outcome in outcomes:
                next_job = self._on_outcome(outcome)
                if next_job is not None:
                    # From the monitor thread itself: its next wait already includes this child, so no
                    # wake-up write (and no extra monitor wake-up) per task.
                    self._assign(next_job)
        with self._lock:
            for slot in self._slots:
                self._fill_ahead(slot)

    def stop(self) -> list[Job]:
        """Kill every child now; return the jobs they were running."""
        self._stopping = True
        self._wakeup_w.send_bytes(b"")
        if self._monitor is not None:
            self._monitor.join(timeout=5)
        with self._lock:
            unfinished = [job for s in self._slots for job in (s.job, s.ahead) if job is not None]
            for slot in self._slots:
                if slot.waiting is not None:
                    # Blocked on Redis, it would not see its pipe close until its wait ends.
                    kill(slot.process)
                    slot.waiting.finish()
                    slot.waiting = None
                if slot.job is None:
                    slot.conn.close()  # the child sees EOF and exits by itself
                    slot.process.join(timeout=2)
                kill(slot.process)
                slot.process.join(timeout=5)
            for process, _ in self._retiring:
                kill(process)
                process.join(timeout=5)
            self._retiring = []
            self._selector.close()
            return unfinished
