"""A pure-Python reference model of one queue's task transitions, as the Lua scripts in
jobqueue/broker/lua/ implement them (tests/integration/jobqueue/test_transition_model.py runs both side by
side and compares them after every step).

It models exactly what the state-machine test drives: tasks without dependencies or dedup, one queue,
strict priorities, no flow control, no parked workers. Time is not modelled: every lease and every delay is
long (minutes), and the test makes a lease expire or a delayed task due by rewriting its score in the lease
or delayed zset to a small "sequence" number (in the past for the server clock). Those numbers are distinct,
so the order in which the scripts walk a zset by score is known here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue.broker.completion import CompletionCode
from jobqueue.models import TaskStatus

S = TaskStatus
PRIORITIES = ("high", "medium", "low")
# Every single transition a script may make (lua/*.lua); the model refuses any other, and the test checks
# what it observes in Redis between two steps against these plus FETCH_COMPOSITES.
ALLOWED_EDGES = frozenset(
    {
        (S.QUEUED, S.RUNNING),  # fetch
        (S.QUEUED, S.CANCELLED),  # cancel
        (S.DELAYED, S.QUEUED),  # promote (promote.lua, or inside fetch.lua)
        (S.DELAYED, S.CANCELLED),
        (S.RETRYING, S.QUEUED),
        (S.RETRYING, S.CANCELLED),
        (S.RUNNING, S.SUCCESS),  # ack
        (S.RUNNING, S.RETRYING),  # fail, retry scheduled
        (S.RUNNING, S.FAILED),  # fail (dead letter), or recover of a poison task
        (S.RUNNING, S.TIMEOUT),  # fail at the hard limit
        (
            S.RUNNING,
            S.CANCELLED,
        ),  # fail as cancelled; recover or release of a task whose cancel was requested
        (S.RUNNING, S.QUEUED),  # release, recover
        (S.FAILED, S.QUEUED),  # replay from the dead letters
        (S.TIMEOUT, S.QUEUED),
        (S.QUEUED, S.EXPIRED),  # fetch reaches a task past its expires_at: ended, never leased
    }
)
# fetch.lua promotes and leases (or expires) in one call: a due delayed task can go to RUNNING or EXPIRED
# between two observations.
FETCH_COMPOSITES = frozenset(
    {(S.DELAYED, S.RUNNING), (S.RETRYING, S.RUNNING), (S.DELAYED, S.EXPIRED), (S.RETRYING, S.EXPIRED)}
)
DEAD_STATUSES = (S.FAILED, S.TIMEOUT)


@dataclass
class ModelTask:
    """What the model knows of one task: the fields the scripts decide on."""

    id: str
    priority: str
    max_retries: int
    status: TaskStatus
    attempts: int = 0  # the fencing token of the latest lease
    retries: int = 0
    lost_leases: int = 0
    worker: str | None = None
    cancel_requested: str | None = None
    expired: bool = False  # its expires_at is in the past: the next fetch that reaches it ends it EXPIRED


class TransitionModel:
    """Where every task is and in what state, changed by the same rules as the scripts."""

    def __init__(self, max_lost_leases: int) -> None:
        self.max_lost_leases = max_lost_leases
        self.tasks: dict[str, ModelTask] = {}
        self.ready: dict[str, list[str]] = {p: [] for p in PRIORITIES}  # front first
        self.delayed: dict[str, int | None] = {}  # id -> due sequence; None = not due for minutes
        self.leases: dict[str, int | None] = {}  # id -> expired at sequence; None = live
        self.dead: set[str] = set()

    def _move(self, task: ModelTask, status: TaskStatus) -> None:
        assert (task.status, status) in ALLOWED_EDGES, f"model bug: {task.status} -> {status}"
        task.status = status

    def place(self, task_id: str) -> str:
        """ready, delayed, leased, dead or finished: the one place the task must be in."""
        if any(task_id in ids for ids in self.ready.values()):
            return "ready"
        if task_id in self.delayed:
            return "delayed"
        if task_id in self.leases:
            return "leased"
        return "dead" if task_id in self.dead else "finished"

    def enqueue(self, task_id: str, priority: str, max_retries: int, delayed: bool) -> None:
        self.tasks[task_id] = ModelTask(task_id, priority, max_retries, S.DELAYED if delayed else S.QUEUED)
        if delayed:
            self.delayed[task_id] = None
        else:
            self.ready[priority].append(task_id)

    def make_expired(self, task_id: str) -> None:
        self.tasks[task_id].expired = True

    def make_due(self, task_id: str, sequence: int) -> None:
        self.delayed[task_id] = sequence

    def promote_due(self) -> int:
        """Due delayed ids to the back of their ready list, earliest first (lua/_promote.lua)."""
        due = sorted((seq, i) for i, seq in self.delayed.items() if seq is not None)
        for _, task_id in due:
            del self.delayed[task_id]
            task = self.tasks[task_id]
            self._move(task, S.QUEUED)
            self.ready[task.priority].append(task_id)
        return len(due)

    def fetch(self, worker: str, n: int) -> list[tuple[str, int]]:
        """(id, token) of what fetch.lua leases: strict priority, FIFO within a level; an expired task it
        pops ends EXPIRED and does not count against ``n`` (lua/_lease.lua)."""
        self.promote_due()
        out = []
        for priority in PRIORITIES:
            while len(out) < n and self.ready[priority]:
                task = self.tasks[self.ready[priority].pop(0)]
                if task.expired:
                    task.worker = None
                    self._move(task, S.EXPIRED)
                    continue
                task.attempts += 1
                task.worker = worker
                self._move(task, S.RUNNING)
                self.leases[task.id] = None
                out.append((task.id, task.attempts))
        return out

    def fence(self, task_id: str, token: int) -> CompletionCode | None:
        """The stale code of a completion with ``token`` (lua/_fence.lua), None when it is the live lease."""
        task = self.tasks.get(task_id)
        if task is None:
            return CompletionCode.UNKNOWN_TASK
        if task.attempts != token:
            return CompletionCode.FENCED
        if task.status != S.RUNNING:
            return CompletionCode.LEASE_LOST
        return None

    def ack(self, task_id: str, token: int) -> CompletionCode:
        stale = self.fence(task_id, token)
        if stale is not None:
            return stale
        task = self.tasks[task_id]
        del self.leases[task_id]
        self._move(task, S.SUCCESS)
        task.cancel_requested = None
        return CompletionCode.SUCCEEDED

    def fail(self, task_id: str, token: int, retryable: bool, final: TaskStatus) -> CompletionCode:
        stale = self.fence(task_id, token)
        if stale is not None:
            return stale
        task = self.tasks[task_id]
        del self.leases[task_id]
        would_retry = retryable and task.retries < task.max_retries and final != S.CANCELLED
        if would_retry and task.cancel_requested:
            final = S.CANCELLED  # not retried: a requested cancel ends it instead of another attempt
        elif would_retry:
            task.retries += 1
            self._move(task, S.RETRYING)
            self.delayed[task_id] = None  # the test's backoff is an hour
            return CompletionCode.RETRY_SCHEDULED
        self._move(task, final)
        task.cancel_requested = None
        if final in DEAD_STATUSES:
            self.dead.add(task_id)
        return CompletionCode.FINISHED

    def release(self, task_id: str, token: int) -> CompletionCode:
        stale = self.fence(task_id, token)
        if stale is not None:
            return stale
        task = self.tasks[task_id]
        del self.leases[task_id]
        task.worker = None
        if task.cancel_requested:
            # Not handed back to run again: a requested cancel ends it, as recover does.
            task.cancel_requested = None
            self._move(task, S.CANCELLED)
            return CompletionCode.FINISHED
        self._move(task, S.QUEUED)
        self.ready[task.priority].insert(0, task_id)
        return CompletionCode.RELEASED

    def heartbeat(self, worker: str, held: list[tuple[str, int]]) -> tuple[list[str], dict[str, str]]:
        """(lost ids, {id: cancel mode}) of heartbeat.lua; a renewed lease is live again."""
        lost, cancels = [], {}
        for task_id, token in held:
            task = self.tasks[task_id]
            if task.status == S.RUNNING and task.attempts == token and task.worker == worker:
                self.leases[task_id] = None
                if task.cancel_requested:
                    cancels[task_id] = task.cancel_requested
            else:
                lost.append(task_id)
        return lost, cancels

    def expire(self, task_id: str, sequence: int) -> None:
        self.leases[task_id] = sequence

    def _recover(self, task: ModelTask) -> str:
        """One lost lease (recover.lua): 'requeued', 'dead' or 'cancelled'."""
        del self.leases[task.id]
        task.lost_leases += 1
        if task.cancel_requested:
            task.cancel_requested = None
            task.worker = None
            self._move(task, S.CANCELLED)
            return "cancelled"
        if task.lost_leases > self.max_lost_leases:
            self._move(task, S.FAILED)
            self.dead.add(task.id)
            return "dead"
        task.worker = None
        self._move(task, S.QUEUED)
        self.ready[task.priority].insert(0, task.id)  # LPUSH: the last recovered ends up first
        return "requeued"

    def recover_expired(self) -> list[int]:
        """[requeued, dead_lettered, left, cancelled] of the expiry reaper (expired leases by score)."""
        expired = sorted((seq, i) for i, seq in self.leases.items() if seq is not None)
        counts = {"requeued": 0, "dead": 0, "cancelled": 0}
        for _, task_id in expired:
            counts[self._recover(self.tasks[task_id])] += 1
        return [counts["requeued"], counts["dead"], 0, counts["cancelled"]]

    def recover_worker(self, worker: str) -> tuple[list[int], dict[str, set[str]]]:
        """recover.lua for a worker known dead: every lease it holds, whatever its expiry. The held set is
        read with SPOP, so the order of the requeued ids at the front of each ready list is not defined:
        the second value is {priority: ids pushed to its front}, for the caller to take the order from
        Redis."""
        mine = [i for i in self.leases if self.tasks[i].worker == worker]
        counts = {"requeued": 0, "dead": 0, "cancelled": 0}
        front: dict[str, set[str]] = {p: set() for p in PRIORITIES}
        for task_id in mine:
            what = self._recover(self.tasks[task_id])
            counts[what] += 1
            if what == "requeued":
                front[self.tasks[task_id].priority].add(task_id)
        return [counts["requeued"], counts["dead"], 0, counts["cancelled"]], front

    def cancel(self, task_id: str, force: bool) -> tuple[str, str]:
        """cancel.lua's reply (outcome, status)."""
        task = self.tasks[task_id]
        if task.status in (S.QUEUED, S.DELAYED, S.RETRYING):
            if task.status == S.QUEUED:
                self.ready[task.priority].remove(task_id)
            else:
                del self.delayed[task_id]
            self._move(task, S.CANCELLED)
            return "cancelled", "CANCELLED"
        if task.status == S.RUNNING:
            task.cancel_requested = "force" if force else "graceful"
            return "requested", "RUNNING"
        return "finished", task.status.value

    def replay(self, task_id: str, reset: bool) -> bool:
        """replay.lua: a dead letter back to the end of its ready list."""
        if task_id not in self.dead:
            return False
        task = self.tasks[task_id]
        self.dead.remove(task_id)
        task.worker = None
        self._move(task, S.QUEUED)
        if reset:
            task.retries = task.lost_leases = 0
        self.ready[task.priority].append(task_id)
        return True
