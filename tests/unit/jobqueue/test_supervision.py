"""The supervision helper every long-lived loop runs under (jobqueue.supervision): pure, no I/O."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from jobqueue.supervision import FOREVER, NO_RESTART, RestartPolicy, run_supervised, supervised_thread

FAST = RestartPolicy(initial_delay=0.001, max_delay=0.004, max_failures=4, healthy_after=60.0)


def flaky(failures: int, exc: BaseException | None = None) -> tuple[list[int], Callable[[], None]]:
    calls: list[int] = []

    def loop() -> None:
        calls.append(1)
        if len(calls) <= failures:
            raise exc if exc is not None else RuntimeError(f"failure {len(calls)}")

    return calls, loop


def test_delays_double_up_to_the_cap_and_the_bound_gives_up() -> None:
    policy = RestartPolicy(initial_delay=0.1, max_delay=0.5, max_failures=3)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 10_000)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert [policy.gives_up(n) for n in (1, 2, 3)] == [False, False, True]
    assert not FOREVER.gives_up(10**9) and NO_RESTART.gives_up(1)


def test_a_loop_that_fails_a_few_times_is_run_again_and_ends_normally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls, loop = flaky(3)
    gave_up: list[str] = []
    run_supervised("acker", loop, policy=FAST, on_give_up=lambda name, exc: gave_up.append(name))
    assert len(calls) == 4 and gave_up == []
    assert caplog.text.count("acker failed unexpectedly") == 3
    assert "RuntimeError: failure 3" in caplog.text  # the traceback is logged, not swallowed


def test_a_loop_failing_past_its_bound_gives_up_with_its_last_error() -> None:
    calls, loop = flaky(100)
    gave_up: list[tuple[str, str]] = []
    run_supervised("heartbeat", loop, policy=FAST, on_give_up=lambda n, e: gave_up.append((n, str(e))))
    assert len(calls) == 4 and gave_up == [("heartbeat", "failure 4")]


def test_without_on_give_up_the_last_error_propagates() -> None:
    _, loop = flaky(100)
    with pytest.raises(RuntimeError, match="failure 4"):
        run_supervised("fetcher", loop, policy=FAST)


def test_system_exit_from_a_loop_gives_up_at_once() -> None:
    calls, loop = flaky(1, SystemExit(3))
    gave_up: list[BaseException] = []
    run_supervised("slot", loop, policy=FOREVER, on_give_up=lambda n, e: gave_up.append(e))
    assert len(calls) == 1 and isinstance(gave_up[0], SystemExit)


def test_stop_cuts_the_backoff_short() -> None:
    calls, loop = flaky(100)
    stop = threading.Event()
    stop.set()
    slow = RestartPolicy(initial_delay=60.0, max_failures=None)
    run_supervised("scheduler", loop, policy=slow, stop=stop)
    assert len(calls) == 1


def test_a_long_healthy_run_starts_the_count_again() -> None:
    # healthy_after=0: every run counts as healthy, so failures never add up to the bound of 2.
    policy = RestartPolicy(initial_delay=0.001, max_delay=0.001, max_failures=2, healthy_after=0.0)
    calls, loop = flaky(5)
    run_supervised("recorder", loop, policy=policy)
    assert len(calls) == 6


def test_supervised_thread_reports_its_death() -> None:
    _, loop = flaky(100)
    died = threading.Event()
    thread = supervised_thread("monitor", loop, policy=FAST, on_give_up=lambda n, e: died.set())
    assert thread.daemon and thread.name == "monitor"
    thread.start()
    assert died.wait(5)
