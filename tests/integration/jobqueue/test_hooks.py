"""Application hooks, run by real worker processes (tests/support/jq_hooks_app.py registers each hook
twice: one that raises, then one that records its call in Redis with the pid that ran it)."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest
from jq_testing import wait_until

from jobqueue import App, Client, ConfigurationError, TaskStatus

FINAL = {TaskStatus.SUCCESS, TaskStatus.FAILED}


def hook_calls(client: Client) -> list[tuple[str, int, str]]:
    """(kind, pid, detail) of every recorded hook call, in order."""
    raw = client.redis.lrange(f"{client.settings.key_prefix}:test:hooks", 0, -1)
    calls = []
    for entry in raw:
        kind, pid, detail = entry.split("|", 2)
        calls.append((kind, int(pid), detail))
    return calls


def of(calls: list[tuple[str, int, str]], kind: str) -> list[tuple[int, str]]:
    return [(pid, detail) for k, pid, detail in calls if k == kind]


def run_two_tasks(client: Client) -> tuple[str, str]:
    ok = client.enqueue("add", [2, 3])
    bad = client.enqueue("explode", ["boom"])
    for task_id in (ok.id, bad.id):
        wait_until(lambda task_id=task_id: client.get_task(task_id).status in FINAL, timeout=60)
    # on_dead_letter runs once the acker has Redis's reply, just after a client can see the status.
    wait_until(lambda: of(hook_calls(client), "dead"), timeout=10)
    return ok.id, bad.id


@pytest.mark.parametrize("pool", ["thread", "process", "async"])
def test_hooks_run_once_per_serving_process_and_around_every_attempt(
    pool: str, client: Client, start_worker: Callable[..., Any]
) -> None:
    worker = start_worker("--app", "jq_hooks_app:app", "--pool", pool, "--concurrency", "2")
    ok, bad = run_two_tasks(client)
    # A raising hook changed no outcome: the result, the status and the error are the task's own.
    assert client.get_task(ok).result == 5
    failed = client.get_task(bad)
    assert (failed.status, failed.error) == (TaskStatus.FAILED, "ValueError: boom")
    assert worker.terminate() == 0  # and the stop hook's sys.exit(3) did not change the exit code

    calls = hook_calls(client)
    starts = [pid for pid, _ in of(calls, "start")]
    stops = [pid for pid, _ in of(calls, "stop")]
    if pool == "process":
        # The worker process (its dead-letter hooks run there) and each of its 2 children.
        assert len(starts) == 3 and len(set(starts)) == 3 and worker.pid in starts
        runners = set(starts) - {worker.pid}
    else:
        assert starts == [worker.pid]
        runners = {worker.pid}
    assert sorted(stops) == sorted(starts)

    before = of(calls, "before")
    assert sorted(detail for _, detail in before) == sorted([f"{ok}|add|1", f"{bad}|explode|1"])
    assert {pid for pid, _ in before} <= runners
    after = of(calls, "after")
    assert sorted(detail for _, detail in after) == sorted(
        [f"{ok}|success|", f"{bad}|error|ValueError: boom"]
    )
    assert {pid for pid, _ in after} <= runners
    assert of(calls, "failure") and {detail for _, detail in of(calls, "failure")} == {
        f"{bad}|ValueError|boom"
    }
    assert of(calls, "dead") == [(worker.pid, f"{bad}|FAILED|ValueError: boom")]
    # Per process: its start hook ran before any of its tasks, its stop hook after all of them.
    for pid in runners:
        kinds = [kind for kind, p, _ in calls if p == pid]
        assert kinds[0] == "start" and kinds[-1] == "stop", kinds

    log = worker.log()
    for name in ("broken_start", "broken_before", "broken_after", "broken_failure", "broken_dead_letter"):
        assert f"{name} raised RuntimeError" in log, name
    assert "broken_stop raised SystemExit" in log


def test_each_process_of_processes_runs_its_own_start_and_stop_hooks(
    client: Client, start_worker: Callable[..., Any]
) -> None:
    worker = start_worker("--app", "jq_hooks_app:app", "--pool", "thread", "--processes", "2")
    wait_until(lambda: len(of(hook_calls(client), "start")) == 2, timeout=60)
    run_two_tasks(client)
    worker.signal_group(signal.SIGTERM)
    assert worker.terminate() == 0
    calls = hook_calls(client)
    starts = sorted(pid for pid, _ in of(calls, "start"))
    assert len(set(starts)) == 2 and worker.pid not in starts  # the children serve; the parent holds none
    assert sorted(pid for pid, _ in of(calls, "stop")) == starts


def test_a_coroutine_function_or_a_non_callable_is_refused_as_a_hook() -> None:
    app = App()

    async def opens_a_pool() -> None:
        return None

    with pytest.raises(ConfigurationError, match="coroutine function"):
        app.on_worker_start(opens_a_pool)
    with pytest.raises(ConfigurationError, match="must be a function"):
        app.before_task(42)  # type: ignore[arg-type]
