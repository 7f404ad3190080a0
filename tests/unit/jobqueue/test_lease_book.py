"""The worker's lease bookkeeping, including adaptive prefetch."""

from jobqueue.broker.leases import Job, Outcome, OutcomeKind
from jobqueue.worker.leases import PREFETCH_MAX_TASK_SECONDS, LeaseBook


def job(n: int, token: int = 1) -> Job:
    return Job(f"default.{n:032x}", token, "add", "[]", "{}", "default", "medium", None, None, 0, 0, None)


def done(j: Job) -> Outcome:
    return Outcome(j.id, j.token, OutcomeKind.SUCCESS, "1")


def test_no_prefetch_until_tasks_are_known_to_be_short() -> None:
    book = LeaseBook(concurrency=2, prefetch=2)
    assert book.free_slots() == 2  # unknown task length: lease only what can start now
    started = book.lease([job(1), job(2)])
    assert started == [job(1), job(2)] and book.free_slots() == 0
    assert book.finish(done(job(1)), now=book.running[(job(1).id, 1)] + 0.001) is None
    assert book.effective_prefetch == 2
    assert book.free_slots() == 3  # one slot free plus the prefetch buffer


def test_prefetched_job_takes_the_freed_slot_without_a_fetch() -> None:
    book = LeaseBook(concurrency=1, prefetch=2, average_run_seconds=0.001)
    started = book.lease([job(1), job(2), job(3)], now=0.0)
    assert started == [job(1)] and list(book.prefetched) == [job(2), job(3)]
    assert book.finish(done(job(1)), now=0.001) == job(2)
    assert [j for j, _ in book.unacked] == [job(1)]
    assert book.should_fetch()  # half the buffer is free again


def test_long_tasks_switch_prefetch_off() -> None:
    book = LeaseBook(concurrency=1, prefetch=4, average_run_seconds=0.001)
    book.lease([job(1)], now=0.0)
    for _ in range(20):
        book.finish(done(job(1)), now=10.0)
        book.lease([job(1)], now=0.0)
    assert book.average_run_seconds is not None and book.average_run_seconds > PREFETCH_MAX_TASK_SECONDS
    assert book.effective_prefetch == 0


def test_two_attempts_of_one_task_are_kept_apart() -> None:
    book = LeaseBook(concurrency=2, prefetch=0)
    book.lease([job(1, token=1), job(1, token=2)])
    book.finish(done(job(1, token=1)))
    assert book.holds(job(1).id) and list(book.leased) == [(job(1).id, 2)]


def test_cancel_prefetched_and_take_on_drain() -> None:
    book = LeaseBook(concurrency=1, prefetch=2, average_run_seconds=0.001)
    book.lease([job(1), job(2), job(3)])
    assert book.cancel_prefetched(job(2).id)
    assert not book.cancel_prefetched(job(1).id)  # running: the pool handles it
    assert book.unacked[0][1].kind == OutcomeKind.CANCELLED
    assert book.take_prefetched() == [job(3)]
    assert list(book.leased) == [(job(1).id, 1)]
    assert {j.id for j in book.held_jobs()} == {job(1).id, job(2).id}


def test_prefetch_is_sized_to_a_few_hundredths_of_a_second_of_work_per_slot() -> None:
    def effective(average: float, prefetch: int = 256) -> int:
        return LeaseBook(concurrency=4, prefetch=prefetch, average_run_seconds=average).effective_prefetch

    assert effective(0.00005) == 256  # no-op tasks: the whole buffer
    assert effective(0.01) == 8  # 10 ms tasks: two per slot
    assert effective(0.05) == 4  # 50 ms tasks: one per slot
    assert effective(0.00005, prefetch=3) == 3  # --prefetch caps it
    assert effective(0.2) == 0  # long tasks: none


def test_a_job_taken_ahead_runs_only_once_started_and_only_while_tasks_are_short() -> None:
    book = LeaseBook(concurrency=1, prefetch=4)
    book.lease([job(1), job(2), job(3)], now=0.0)
    assert book.take_ahead() is None  # task length unknown: nothing waits behind a running task
    book.average_run_seconds = 0.001
    assert book.take_ahead() == job(2)
    assert list(book.prefetched) == [job(3)] and (job(2).id, 1) not in book.running
    assert (job(2).id, 1) in book.leased  # still renewed by the heartbeat
    book.start_ahead(job(2), now=0.5)
    # The slot is taken by the job that started: the outcome of its predecessor frees none.
    assert book.finish(done(job(1)), now=0.5) is None
    assert book.running == {(job(2).id, 1): 0.5}


def test_jobs_taken_ahead_are_forgotten_with_the_leases() -> None:
    book = LeaseBook(concurrency=1, prefetch=4, average_run_seconds=0.001)
    book.lease([job(1), job(2)], now=0.0)
    assert book.take_ahead() == job(2)
    book.forget_leases()
    assert not book.ahead and not book.leased


def test_a_job_an_idle_child_started_is_booked_running_and_never_buffered() -> None:
    book = LeaseBook(concurrency=1, prefetch=4)
    book.lease_running(job(1), now=1.0)
    assert book.running == {(job(1).id, 1): 1.0} and (job(1).id, 1) in book.leased
    assert not book.prefetched
    assert book.finish(done(job(1)), now=1.5) is None and not book.leased
