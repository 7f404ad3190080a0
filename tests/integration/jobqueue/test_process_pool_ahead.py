"""The process pool's job waiting ahead in a busy child: real child processes of the real pool."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.worker.child_recycling import ChildLimits
from jobqueue.worker.process_pool import ProcessPool
from jobqueue.worker.process_slots import kill

APP = "jq_test_app:app"
WAIT = 20.0


def job(n: int, name: str, args: str, timeout: float | None = None) -> Job:
    return Job(f"default.{n:032x}", 1, name, args, "{}", "default", "medium", timeout, None, 0, 0, None)


class Ahead:
    """The worker's side, recorded: jobs handed out ahead and the ones reported started."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = list(jobs)
        self.started: list[Job] = []

    def take(self) -> Job | None:
        return self.jobs.pop(0) if self.jobs else None


def submit_with_one_ahead(pool: ProcessPool, ahead: Ahead, first: Job, second: Job) -> None:
    """``first`` runs in the pool's one child; ``second`` is what the worker would hand out ahead of it."""
    ahead.jobs.append(second)
    pool.submit(first)


def next_two(outcomes: queue.Queue[Outcome]) -> list[Outcome]:
    return [outcomes.get(timeout=WAIT), outcomes.get(timeout=WAIT)]


@pytest.fixture
def outcomes() -> queue.Queue[Outcome]:
    return queue.Queue()


@pytest.fixture
def started_pool(outcomes: queue.Queue[Outcome]) -> Iterator[tuple[ProcessPool, Ahead]]:
    pool = ProcessPool(APP, 1)
    ahead = Ahead([])
    pool.queue_ahead(ahead.take, ahead.started.append)
    pool.start(outcomes.put)
    yield pool, ahead
    pool.stop()


def test_the_job_ahead_starts_in_the_child_when_the_current_one_ends(
    started_pool: tuple[ProcessPool, Ahead], outcomes: queue.Queue[Outcome]
) -> None:
    pool, ahead = started_pool
    first, second = job(1, "sleepy", "[0.2]"), job(2, "add", "[1, 2]")
    submit_with_one_ahead(pool, ahead, first, second)
    assert ahead.jobs == []  # taken ahead at once, while the first one runs
    got = next_two(outcomes)
    assert [(o.task_id, o.kind) for o in got] == [
        (first.id, OutcomeKind.SUCCESS),
        (second.id, OutcomeKind.SUCCESS),
    ]
    assert got[1].result_json == "3"
    assert ahead.started == [second]


@pytest.mark.parametrize("force", [True, False])
def test_a_job_cancelled_while_it_waits_ahead_never_starts_and_the_running_one_is_left_alone(
    started_pool: tuple[ProcessPool, Ahead], outcomes: queue.Queue[Outcome], force: bool
) -> None:
    pool, ahead = started_pool
    first, second = job(1, "sleepy", "[0.3]"), job(2, "add", "[1, 2]")
    submit_with_one_ahead(pool, ahead, first, second)
    pool.cancel(second.id, force=force)
    got = next_two(outcomes)
    assert (got[0].task_id, got[0].kind) == (first.id, OutcomeKind.SUCCESS)
    assert (got[1].task_id, got[1].kind) == (second.id, OutcomeKind.CANCELLED)
    assert got[1].error == "TaskCancelled: cancelled before it started"


def test_a_running_job_cancelled_gracefully_sees_it_and_the_job_ahead_does_not(
    started_pool: tuple[ProcessPool, Ahead], outcomes: queue.Queue[Outcome]
) -> None:
    pool, ahead = started_pool
    first, second = job(1, "cancellable", "[5]"), job(2, "add", "[2, 3]")
    submit_with_one_ahead(pool, ahead, first, second)
    pool.cancel(first.id, force=False)
    got = next_two(outcomes)
    assert [o.task_id for o in got] == [first.id, second.id]
    # Seen while it ran, or before it started if the cancel reached the child first: cancelled either way.
    assert got[0].result_json == '"saw cancel"' or got[0].kind == OutcomeKind.CANCELLED
    assert (got[1].kind, got[1].result_json) == (OutcomeKind.SUCCESS, "5")


def test_the_job_ahead_of_a_task_killed_at_its_hard_limit_runs_in_the_replacement_child(
    started_pool: tuple[ProcessPool, Ahead], outcomes: queue.Queue[Outcome]
) -> None:
    pool, ahead = started_pool
    first, second = job(1, "stubborn", "[30]", timeout=0.5), job(2, "add", "[4, 5]")
    submit_with_one_ahead(pool, ahead, first, second)
    got = next_two(outcomes)
    assert [(o.task_id, o.kind) for o in got] == [
        (first.id, OutcomeKind.TIMEOUT),
        (second.id, OutcomeKind.SUCCESS),
    ]
    assert got[1].result_json == "9"
    assert ahead.started == [second]


def test_the_job_ahead_of_a_crashed_child_runs_in_the_replacement_child(
    started_pool: tuple[ProcessPool, Ahead], outcomes: queue.Queue[Outcome]
) -> None:
    pool, ahead = started_pool
    first, second = job(1, "crash", "[]"), job(2, "add", "[1, 1]")
    submit_with_one_ahead(pool, ahead, first, second)
    got = next_two(outcomes)
    assert [(o.task_id, o.kind) for o in got] == [
        (first.id, OutcomeKind.CRASHED),
        (second.id, OutcomeKind.SUCCESS),
    ]


def test_no_job_waits_ahead_in_a_child_with_a_task_limit() -> None:
    pool = ProcessPool(APP, 1, limits=ChildLimits(max_tasks=5))
    ahead = Ahead([job(2, "add", "[1, 2]")])
    pool.queue_ahead(ahead.take, ahead.started.append)
    received: queue.Queue[Outcome] = queue.Queue()
    pool.start(received.put)
    try:
        pool.submit(job(1, "add", "[0, 0]"))
        assert received.get(timeout=WAIT).kind == OutcomeKind.SUCCESS
        assert len(ahead.jobs) == 1  # a child due for replacement holds nothing but its current task
    finally:
        pool.stop()


def test_a_job_handed_ahead_to_a_child_that_just_died_runs_in_the_replacement(
    started_pool: tuple[ProcessPool, Ahead], outcomes: queue.Queue[Outcome]
) -> None:
    """The child's task crashed it between the job being sent and the job ahead being sent (CI caught the
    race: BrokenPipeError out of submit). Made certain here: the child is killed, under the pool's lock so
    the monitor cannot see it first, before the job ahead is handed out."""
    pool, ahead = started_pool
    first, second = job(1, "sleepy", "[30]"), job(2, "add", "[2, 2]")
    pool.submit(first)
    with pool._lock:
        slot = pool._slots[0]
        kill(slot.process)
        slot.process.join(5)
        ahead.jobs.append(second)
        pool._fill_ahead(slot)  # its pipe is broken: no error, the job stays ahead of the dead child
    assert ahead.jobs == []
    got = next_two(outcomes)
    assert [(o.task_id, o.kind) for o in got] == [
        (first.id, OutcomeKind.CRASHED),
        (second.id, OutcomeKind.SUCCESS),
    ]
    assert got[1].result_json == "4"


def test_a_job_given_to_an_idle_child_that_died_unseen_runs_in_a_replacement_not_as_a_crash(
    started_pool: tuple[ProcessPool, Ahead], outcomes: queue.Queue[Outcome]
) -> None:
    """An idle child killed from outside (OOM) just before a job is given to it: the job never reached it,
    so it runs in a replacement rather than coming back as a crashed attempt. The monitor is kept from
    seeing the death first by taking the child out of its watch."""
    pool, _ = started_pool
    with pool._lock:
        slot = pool._slots[0]
        pool._unwatch(slot)
        kill(slot.process)
        slot.process.join(5)
    pool.submit(job(3, "add", "[5, 5]"))
    got = outcomes.get(timeout=WAIT)
    assert (got.kind, got.result_json) == (OutcomeKind.SUCCESS, "10")
    assert pool._slots[0].process.is_alive()
