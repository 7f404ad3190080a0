"""Issue 15, generative: a hypothesis state machine drives the Lua transitions (enqueue, fetch, ack, fail,
release, heartbeat, recover by expiry and by worker, cancel incl. force, replay, promote, task expiry)
through their typed wrappers in jobqueue.broker against a real Redis, and compares Redis with the pure
reference model in tests/support/transition_model.py after every step: every task in exactly one place,
the same status, token and counters, ready lists in the same order, fencing codes as the model predicts
(a refused call changes nothing), statuses only along allowed edges, every live lease in its holder's
held set.

Time: leases last a minute and retry backoff an hour, so nothing expires on its own during a run. A lease
expires, or a delayed task becomes due, only when a rule rewrites its score in the lease or delayed zset to
a small number (a moment of 1970 for the server clock): the scripts still read Redis TIME and decide by
it, and the test decides which entries are in the past.

``make test`` runs a fixed budget on the "default" hypothesis profile (fixed seed; see BUDGET); ``make fuzz``
the "fuzz" profile (random seeds, many more examples)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from payload_strategies import PROFILE
from transition_model import ALLOWED_EDGES, FETCH_COMPOSITES, PRIORITIES, TransitionModel

from jobqueue import Client, Priority, Settings, TaskStatus
from jobqueue.broker.cancellation import build_cancel
from jobqueue.broker.completion import CompletionCode, parse_completion
from jobqueue.broker.completion_calls import build_ack, build_completion
from jobqueue.broker.dead_letters import build_replay
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.enqueue_call import build_enqueue, parse_enqueue_reply
from jobqueue.broker.lease_recovery import build_recover
from jobqueue.broker.leases import (
    Job,
    Outcome,
    OutcomeKind,
    build_fetch,
    build_heartbeat,
    build_release,
    parse_fetch,
    parse_heartbeat,
)
from jobqueue.broker.promotion import build_promote, parse_promote
from jobqueue.broker.redis_io import run_script
from jobqueue.keys import QueueKeys
from jobqueue.retry import RetryPolicy

# Bounded by its examples, not by the default timeout: a failure is shrunk, which can take minutes.
pytestmark = pytest.mark.timeout(max(240, PROFILE.max_examples))
# The budget: make test's profile gives a payload test 25 examples. A state-machine example is cheap (a few
# Redis round trips per step) but most of hypothesis's derandomized early examples are degenerate, and a bug
# needs several steps in one order: 300 examples of up to 50 steps (about 20 s of CPU, 30-40 s on a busy
# 2-core machine) found the held-set bug fixed in heartbeat.lua; 100 did not. make fuzz: the fuzz
# profile's examples (random seeds), up to 100 steps each.
FUZZING = PROFILE.max_examples > 100
BUDGET = hypothesis_settings(
    PROFILE,
    max_examples=PROFILE.max_examples if FUZZING else 12 * PROFILE.max_examples,
    stateful_step_count=100 if FUZZING else 50,
)

QUEUE = "default"
WORKERS = ("w1", "w2")
BACKOFF = RetryPolicy("constant", 3600.0, 3600.0, jitter=False)
FAIL_KINDS = {
    OutcomeKind.ERROR: TaskStatus.FAILED,
    OutcomeKind.TIMEOUT: TaskStatus.TIMEOUT,
    OutcomeKind.CANCELLED: TaskStatus.CANCELLED,
}
TASK_SPECS = st.tuples(st.sampled_from(PRIORITIES), st.integers(0, 2), st.booleans())
HASH_FIELDS = ("status", "attempts", "retries", "lost_leases", "worker", "cancel_requested")


class TransitionMachine(RuleBasedStateMachine):
    """One queue on a fresh key prefix per example; two workers; the model beside it."""

    base_settings: Settings  # bound by the test (the session's Redis server)

    def __init__(self) -> None:
        super().__init__()
        self.settings = self.base_settings.model_copy(
            update={
                "key_prefix": f"t{uuid.uuid4().hex[:10]}",
                "lease_seconds": 60.0,
                "max_lost_leases": 2,
                "backoff_scale": 1.0,
                "default_max_retries": 0,
            }
        )
        self.client = Client(self.settings)
        self.keys = QueueKeys(self.settings.key_prefix, QUEUE)
        self.model = TransitionModel(self.settings.max_lost_leases)
        # Attempts a worker believes it runs: fetched and not yet completed or released by it. A stalled
        # worker keeps running (and heartbeating) an attempt whose lease was recovered meanwhile.
        self.in_flight: dict[str, list[Job]] = {w: [] for w in WORKERS}
        self.every_attempt: list[tuple[str, Job]] = []
        self.sequence = 0
        self.observed: dict[str, TaskStatus] = {}

    def teardown(self) -> None:
        self.client.close()

    def _next_sequence(self) -> int:
        self.sequence += 1
        return self.sequence

    def _run(self, call: Any) -> Any:
        return run_script(self.client.redis, call)

    # --- rules -------------------------------------------------------------------------------------------

    @initialize(tasks=st.lists(TASK_SPECS, min_size=2, max_size=6))
    def some_tasks(self, tasks: list[tuple[str, int, bool]]) -> None:
        # Every example starts with work to do: the fixed small budget of make test is not spent on
        # examples that never get past an empty queue.
        for priority, max_retries, delayed in tasks:
            self.enqueue(priority, max_retries, delayed)

    @rule(priority=st.sampled_from(PRIORITIES), max_retries=st.integers(0, 2), delayed=st.booleans())
    def enqueue(self, priority: str, max_retries: int, delayed: bool) -> None:
        request = make_request(
            "task", [], {}, priority=priority, max_retries=max_retries, countdown=3600 if delayed else None
        )
        # Ids chosen here, not random: hypothesis replays an example only if its draws pick the same tasks.
        request = replace(request, task_id=f"{QUEUE}.t{len(self.model.tasks):03d}")
        task_id, call = build_enqueue(self.settings, request)
        reply = parse_enqueue_reply(self._run(call))
        assert (reply.id, reply.created) == (task_id, True)
        self.model.enqueue(task_id, priority, max_retries, delayed)

    @rule(worker=st.sampled_from(WORKERS), n=st.integers(1, 3))
    def fetch(self, worker: str, n: int) -> None:
        reply = parse_fetch(QUEUE, self._run(build_fetch(self.settings, QUEUE, n, worker)))
        expected = self.model.fetch(worker, n)
        assert [(j.id, j.token) for j in reply.jobs] == expected
        for job in reply.jobs:
            assert job.retries == self.model.tasks[job.id].retries
            self.in_flight[worker].append(job)
            self.every_attempt.append((worker, job))

    @precondition(lambda self: self.model.delayed)
    @rule(data=st.data())
    def make_due(self, data: st.DataObject) -> None:
        """Test helper for time: a delayed task's due time rewritten into the past."""
        task_id = data.draw(st.sampled_from(sorted(self.model.delayed)))
        sequence = self._next_sequence()
        assert self.client.redis.zadd(self.keys.delayed, {task_id: sequence}, xx=True) == 0
        self.model.make_due(task_id, sequence)

    @precondition(lambda self: any(not t.expired for t in self.model.tasks.values()))
    @rule(data=st.data())
    def make_expired(self, data: st.DataObject) -> None:
        """Test helper for time: a task's expires_at rewritten into the past, whatever its state (it has
        an effect only when a fetch next reaches it: queued, delayed, retrying, or after a hand-back)."""
        task_id = data.draw(st.sampled_from(sorted(i for i, t in self.model.tasks.items() if not t.expired)))
        self.client.redis.hset(self.keys.task(task_id), "expires_at", self._next_sequence())
        self.model.make_expired(task_id)

    @rule()
    def promote(self) -> None:
        promotion = parse_promote(self._run(build_promote(self.settings, QUEUE)))
        assert promotion.promoted == self.model.promote_due()
        assert (promotion.next_due_ms == -1) == (not self.model.delayed)

    def _attempt(self, data: st.DataObject) -> tuple[str, Job]:
        return data.draw(st.sampled_from(self.every_attempt))

    def _completed(self, worker: str, job: Job) -> None:
        if job in self.in_flight[worker]:
            self.in_flight[worker].remove(job)

    def _expect_code(self, job: Job, code: CompletionCode, expected: CompletionCode, before: Any) -> None:
        assert code == expected, f"{job.id} token {job.token}: {code!r}, model says {expected!r}"
        if code.stale:
            # Fencing: a refused call changes nothing at all in the task's record.
            assert self.client.redis.hgetall(self.keys.task(job.id)) == before

    @precondition(lambda self: self.every_attempt)
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        worker, job = self._attempt(data)
        before = self.client.redis.hgetall(self.keys.task(job.id))
        outcome = Outcome(job.id, job.token, OutcomeKind.SUCCESS, "1")
        [code] = parse_completion(self._run(build_ack(self.settings, [(job, outcome)], worker_id=worker)))
        self._expect_code(job, code, self.model.ack(job.id, job.token), before)
        self._completed(worker, job)

    @precondition(lambda self: self.every_attempt)
    @rule(data=st.data(), kind=st.sampled_from(sorted(FAIL_KINDS)), retryable=st.booleans())
    def fail(self, data: st.DataObject, kind: OutcomeKind, retryable: bool) -> None:
        worker, job = self._attempt(data)
        before = self.client.redis.hgetall(self.keys.task(job.id))
        outcome = Outcome(job.id, job.token, kind, error="Boom: x", retryable=retryable)
        call = build_completion(self.settings, job, outcome, BACKOFF, worker_id=worker)
        [code] = parse_completion(self._run(call))
        self._expect_code(job, code, self.model.fail(job.id, job.token, retryable, FAIL_KINDS[kind]), before)
        self._completed(worker, job)

    @precondition(lambda self: self.every_attempt)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        worker, job = self._attempt(data)
        before = self.client.redis.hgetall(self.keys.task(job.id))
        [code] = parse_completion(self._run(build_release(self.settings, job, worker_id=worker)))
        self._expect_code(job, code, self.model.release(job.id, job.token), before)
        self._completed(worker, job)

    @rule(worker=st.sampled_from(WORKERS))
    def heartbeat(self, worker: str) -> None:
        jobs = self.in_flight[worker]
        if not jobs:
            return  # a worker holding nothing does not call the script
        lost, cancels = parse_heartbeat(self._run(build_heartbeat(self.settings, QUEUE, worker, jobs)))
        expected_lost, expected_cancels = self.model.heartbeat(worker, [(j.id, j.token) for j in jobs])
        assert (lost, cancels) == (expected_lost, expected_cancels)

    @precondition(lambda self: self.model.leases)
    @rule(data=st.data())
    def expire_lease(self, data: st.DataObject) -> None:
        """Test helper for time: a lease's expiry rewritten into the past (its worker stopped renewing)."""
        task_id = data.draw(st.sampled_from(sorted(self.model.leases)))
        sequence = self._next_sequence()
        assert self.client.redis.zadd(self.keys.leases, {task_id: sequence}, xx=True) == 0
        self.model.expire(task_id, sequence)

    @rule(worker=st.sampled_from(WORKERS))
    def worker_stalls(self, worker: str) -> None:
        """Every lease of one worker expires at once (it stopped renewing them), then the reaper runs: the
        worker itself still believes it runs those attempts, and may fetch the same tasks again."""
        for task_id in [i for i in self.model.leases if self.model.tasks[i].worker == worker]:
            sequence = self._next_sequence()
            assert self.client.redis.zadd(self.keys.leases, {task_id: sequence}, xx=True) == 0
            self.model.expire(task_id, sequence)
        self.recover_expired()

    @rule()
    def recover_expired(self) -> None:
        reply = [int(v) for v in self._run(build_recover(self.settings, QUEUE))]
        assert reply == self.model.recover_expired()

    @rule(worker=st.sampled_from(WORKERS))
    def recover_worker(self, worker: str) -> None:
        """The worker is known dead (operator, supervisor): every lease it holds, expired or not."""
        reply = [int(v) for v in self._run(build_recover(self.settings, QUEUE, worker))]
        expected, front = self.model.recover_worker(worker)
        assert reply == expected
        for priority, ids in front.items():
            if not ids:
                continue
            # SPOP order is not defined: the set is checked, then rewritten in id order (test helper) so
            # that an example replays the same way.
            key = self.keys.ready(priority)
            assert set(self.client.redis.lrange(key, 0, len(ids) - 1)) == ids
            for position, task_id in enumerate(sorted(ids)):
                self.client.redis.lset(key, position, task_id)
            self.model.ready[priority][: len(ids)] = sorted(ids)
        self.in_flight[worker].clear()

    def _any_task(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.model.tasks)))

    @precondition(lambda self: self.model.tasks)
    @rule(data=st.data(), force=st.booleans())
    def cancel(self, data: st.DataObject, force: bool) -> None:
        task_id = self._any_task(data)
        priority = Priority(self.model.tasks[task_id].priority)
        reply = self._run(build_cancel(self.settings, task_id, priority, "user_requested", force))
        assert tuple(reply) == self.model.cancel(task_id, force)

    @precondition(lambda self: self.model.tasks)
    @rule(data=st.data(), reset=st.booleans())
    def replay(self, data: st.DataObject, reset: bool) -> None:
        # Any task, dead letter or not: replay must refuse the others without changing them.
        task_id = self._any_task(data)
        priority = Priority(self.model.tasks[task_id].priority)
        replayed = self._run(build_replay(self.settings, task_id, priority, reset))
        assert bool(replayed) == self.model.replay(task_id, reset)

    # --- invariants --------------------------------------------------------------------------------------

    @invariant()
    def redis_matches_the_model(self) -> None:
        ids = sorted(self.model.tasks)
        pipe = self.client.redis.pipeline(transaction=False)
        for priority in PRIORITIES:
            pipe.lrange(self.keys.ready(priority), 0, -1)
        pipe.zrange(self.keys.delayed, 0, -1)
        pipe.zrange(self.keys.leases, 0, -1, withscores=True)
        pipe.zrange(self.keys.dead, 0, -1)
        for task_id in ids:
            pipe.hmget(self.keys.task(task_id), HASH_FIELDS)
            pipe.ttl(self.keys.task(task_id))
        for worker in WORKERS:
            pipe.smembers(self.keys.held(worker))
        replies = pipe.execute()
        leases = dict(replies[4])
        self._check_places(dict(zip(PRIORITIES, replies[:3], strict=True)), replies[3], leases, replies[5])
        held = dict(zip(WORKERS, replies[6 + 2 * len(ids) :], strict=True))
        records = replies[6 : 6 + 2 * len(ids) : 2]
        ttls = replies[7 : 7 + 2 * len(ids) : 2]
        for task_id, record, ttl in zip(ids, records, ttls, strict=True):
            self._check_task(task_id, record, leases, held)
            # Nothing stays in Redis for good but dead letters: a finished record expires, a live one
            # (waiting, leased or dead-lettered) does not.
            finished = self.model.place(task_id) == "finished"
            assert (ttl > 0) if finished else (ttl == -1), f"{task_id}: TTL {ttl}"

    def _check_places(
        self, ready: dict[str, list[str]], delayed: list[str], leases: dict[str, float], dead: list[str]
    ) -> None:
        """No task lost, none duplicated: each id once, in the one place the model says."""
        assert ready == self.model.ready
        everywhere = [*ready["high"], *ready["medium"], *ready["low"], *delayed, *leases, *dead]
        assert len(everywhere) == len(set(everywhere)), "an id is in two places"
        assert set(everywhere) <= set(self.model.tasks), "an entry no task owns"
        assert set(delayed) == set(self.model.delayed)
        assert set(leases) == set(self.model.leases)
        assert set(dead) == self.model.dead
        # A lease is live (a minute ahead) unless the test expired it; a renewal makes it live again.
        for task_id, score in leases.items():
            assert (score < 10**6) == (self.model.leases[task_id] is not None), task_id

    def _check_task(
        self, task_id: str, record: list[str | None], leases: dict[str, float], held: dict[str, set[str]]
    ) -> None:
        """One task's record against the model: status, token, counters, cancel flag, held-set index."""
        task = self.model.tasks[task_id]
        status, attempts, retries, lost_leases, worker, cancel_requested = record
        assert status is not None, f"task {task_id} lost its record"
        observed = TaskStatus(status)
        assert observed == task.status, f"{task_id}: {observed}, model says {task.status}"
        counters = (int(attempts or 0), int(retries or 0), int(lost_leases or 0))
        assert counters == (task.attempts, task.retries, task.lost_leases), task_id
        assert cancel_requested == task.cancel_requested, task_id
        if self.model.place(task_id) == "finished":
            assert observed.is_terminal and observed not in (TaskStatus.FAILED, TaskStatus.TIMEOUT)
        # Statuses move only along the edges the scripts define.
        before = self.observed.get(task_id, observed)
        edge = (before, observed)
        assert before == observed or edge in ALLOWED_EDGES | FETCH_COMPOSITES, f"{task_id}: {edge}"
        self.observed[task_id] = observed
        # The held-set index never hides a lease from recovery of its worker.
        if task_id in leases:
            assert worker is not None and worker == task.worker, task_id
            assert task_id in held[worker], f"lease of {task_id} missing from {worker}'s held set"


def test_the_lua_transitions_agree_with_the_reference_model(settings: Settings) -> None:
    TransitionMachine.base_settings = settings
    run_state_machine_as_test(TransitionMachine, settings=BUDGET)
