"""Burst mode on a real Redis: ``jobqueue worker --burst`` as a real process, and
``jobqueue.testing.run_until_idle`` in-process through the same worker code."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from jq_testing import burst_worker

from jobqueue import App, Client, Settings, TaskContext, TaskStatus
from jobqueue.broker.enqueue import make_request
from jobqueue.errors import ConfigurationError, RunTimeout, ValidationError
from jobqueue.testing import run_until_idle


def test_burst_runs_a_thousand_tasks_and_exits_zero(settings: Settings, client: Client) -> None:
    handles = client.enqueue_many([make_request("add", [i, i]) for i in range(1000)])
    started = time.monotonic()
    done = burst_worker(settings, "--concurrency", "4")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("burst: 1000 task(s) finished in "), done.stdout
    assert "1000 success, 0 failed, 0 timeout" in summary
    assert [h.result(timeout=1) for h in handles[:3]] == [0, 2, 4]
    assert client.get_task(handles[-1].id).status == TaskStatus.SUCCESS
    print(f"1000 tasks, process pool of 4: burst worker exited after {elapsed:.2f}s")


def test_burst_exits_one_when_a_task_failed(settings: Settings, client: Client) -> None:
    client.enqueue_many([make_request("add", [i, 1]) for i in range(20)])
    failing = client.enqueue("fail_with", ["value"])  # ValueError: not retried, dead-lettered
    done = burst_worker(settings, "--pool", "thread")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "20 success, 1 failed" in done.stdout
    assert client.get_task(failing.id).status == TaskStatus.FAILED


def test_burst_waits_for_retries_due_within_the_burst_wait(settings: Settings, client: Client) -> None:
    # fail_times retries after 0.05 s: without --burst-wait the run ends with the retry still delayed.
    flaky = client.enqueue("fail_times", [2], max_retries=3)
    done = burst_worker(settings, "--pool", "thread", "--burst-wait", "5")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "1 success" in done.stdout and "2 retried" in done.stdout
    assert flaky.result(timeout=1) == 3


def test_an_empty_queue_exits_at_once(settings: Settings) -> None:
    started = time.monotonic()
    done = burst_worker(settings, "--pool", "thread")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "burst: 0 task(s) finished" in done.stdout
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("bad", ["-1", "nan", "inf"])
def test_a_bad_burst_wait_is_one_line_naming_the_option(settings: Settings, bad: str) -> None:
    done = burst_worker(settings, "--burst-wait", bad, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: burst-wait: must be a finite number of seconds >= 0"]


# -- run_until_idle, in-process ------------------------------------------------------------------------


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    app = App(settings=settings.model_copy(update={"backoff_scale": 0.0}))
    attempts: dict[str, int] = {}

    @app.task(queue="math")
    def double(x: int) -> int:
        return 2 * x

    @app.task(queue="math")
    def total(values: list[int]) -> int:
        return sum(values)

    @app.task(bind=True, max_retries=3)
    def flaky(ctx: TaskContext, failures: int) -> int:
        attempts[ctx.id] = attempts.get(ctx.id, 0) + 1
        if ctx.retries < failures:
            raise OSError("not yet")
        return ctx.retries

    @app.task(bind=True, max_retries=1, retry_backoff="constant", retry_base=30, retry_jitter=False)
    def patient(ctx: TaskContext) -> int:
        if ctx.retries == 0:
            raise OSError("first attempt fails")
        return ctx.retries

    @app.task(max_retries=0)
    def broken() -> None:
        raise ValueError("always")

    @app.task(queue="slow")
    def slow(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @app.task
    def fan_out(n: int) -> int:
        for i in range(n):
            double.enqueue(i)
        return n

    yield app
    app.close()


def test_run_until_idle_runs_every_queue_of_the_app(app: App) -> None:
    handles = [app.registry["double"].enqueue(i) for i in range(50)]
    parent = app.registry["fan_out"].enqueue(5)  # queue "default"; enqueues into "math" as it runs
    summary = run_until_idle(app, timeout=20)
    assert [h.result(timeout=1) for h in handles] == [2 * i for i in range(50)]
    assert parent.result(timeout=1) == 5
    assert summary.counts == {"SUCCESS": 56}
    assert summary.exit_code == 0 and summary.failed_ids == ()


def test_run_until_idle_runs_retries_at_once_with_backoff_scale_zero(app: App) -> None:
    # The task's own policy is exponential from 1 s: 1 s + 2 s of waiting at backoff_scale 1.
    handle = app.registry["flaky"].enqueue(2)
    started = time.monotonic()
    summary = run_until_idle(app, timeout=20)
    assert time.monotonic() - started < 2.5
    assert handle.result(timeout=1) == 2
    assert (summary.succeeded, summary.retried) == (1, 2)


def test_backoff_scale_applies_to_a_task_s_own_policy_too(app: App) -> None:
    handle = app.registry["patient"].enqueue()  # constant 30 s backoff, scaled to 0
    summary = run_until_idle(app, timeout=10)
    assert (summary.succeeded, summary.retried) == (1, 1)
    assert handle.result(timeout=1) == 1
    history = app.client.get_task(handle.id).retry_history
    assert [entry["backoff_seconds"] for entry in history] == [0]


def test_run_until_idle_reports_failed_tasks(app: App) -> None:
    bad = app.registry["broken"].enqueue()
    good = app.registry["double"].enqueue(4)
    summary = run_until_idle(app, timeout=20)
    assert summary.failed_ids == (bad.id,)
    assert summary.counts == {"SUCCESS": 1, "FAILED": 1}
    assert summary.exit_code == 1
    assert good.result(timeout=1) == 8


def test_run_until_idle_releases_workflow_children(app: App) -> None:
    from jobqueue import chord  # noqa: PLC0415 - only this test builds a workflow

    double, total = app.registry["double"], app.registry["total"]
    flow = chord([double.s(1), double.s(2), double.s(3)], total.s()).apply(app)
    summary = run_until_idle(app, timeout=20)
    assert summary.succeeded == 4
    assert flow.result(timeout=1) == 12


def test_run_until_idle_waits_for_a_countdown_due_within_the_timeout(app: App) -> None:
    handle = app.registry["double"].enqueue_in(0.3, 21)
    summary = run_until_idle(app, timeout=10)
    assert summary.succeeded == 1
    assert handle.result(timeout=1) == 42


def test_run_until_idle_leaves_tasks_due_after_the_timeout(app: App) -> None:
    later = app.registry["double"].enqueue_in(3600, 1)
    summary = run_until_idle(app, timeout=5)
    assert summary.total == 0
    assert app.client.get_task(later.id).status in (TaskStatus.DELAYED, TaskStatus.QUEUED)


def test_run_until_idle_gives_up_at_its_timeout(app: App) -> None:
    app.registry["slow"].enqueue(5.0)
    started = time.monotonic()
    with pytest.raises(RunTimeout) as raised:
        run_until_idle(app, queues=["slow"], timeout=0.5)
    # The timeout, then the short grace for the running task: never the task's whole 5 s.
    assert time.monotonic() - started < 4.5
    assert raised.value.summary.total == 0


def test_run_until_idle_refuses_an_app_without_tasks(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="registers no task"):
        run_until_idle(App(settings=settings))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_run_until_idle_refuses_a_timeout_that_is_not_a_positive_duration(app: App, bad: float) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        run_until_idle(app, timeout=bad)


@pytest.mark.parametrize(
    ("queues", "error", "match"),
    [
        ([], ConfigurationError, "queues is empty"),
        ("math", ConfigurationError, "not a string"),
        (["bad queue"], ValidationError, "queue"),
        (["nul\x00"], ValidationError, "queue"),
        (["\udcff"], ValidationError, "queue"),
        (["x" * 10_000], ValidationError, "queue"),
    ],
)
def test_run_until_idle_refuses_bad_queue_names(
    app: App, queues: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        run_until_idle(app, queues=queues, timeout=5)  # type: ignore[arg-type]


def test_burst_refuses_several_processes(settings: Settings) -> None:
    done = burst_worker(settings, "--processes", "2", timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: burst: runs one worker process: use it without --processes"
    ]


@pytest.mark.parametrize("pool", ["thread", "process"])
def test_a_soft_timeout_is_raised_in_the_task_and_logged_as_a_warning(
    settings: Settings, client: Client, pool: str
) -> None:
    handle = client.enqueue("soft", [3], timeout=5, soft_timeout=0.3)
    done = burst_worker(settings, "--pool", pool)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert handle.result(timeout=1) == "cleaned up after soft timeout"
    warnings = [line for line in done.stderr.splitlines() if "soft time limit" in line]
    assert warnings and all("WARNING" in line for line in warnings), done.stderr[-3000:]
