"""The parent of ``jobqueue worker --processes``: what it does about a child that exited (pure)."""

from __future__ import annotations

import sys

from jobqueue.worker.processes import ChildAction, child_command, on_child_exit

NOW = 1000.0


def test_a_child_that_exits_during_a_stop_is_done_whatever_its_code() -> None:
    assert on_child_exit(0, stopping=True, recent_restarts=[], now=NOW) is ChildAction.DONE
    assert on_child_exit(-9, stopping=True, recent_restarts=[], now=NOW) is ChildAction.DONE


def test_a_child_that_drained_on_request_is_not_restarted() -> None:
    assert on_child_exit(0, stopping=False, recent_restarts=[], now=NOW) is ChildAction.DONE


def test_a_child_that_died_is_restarted() -> None:
    assert on_child_exit(-9, stopping=False, recent_restarts=[], now=NOW) is ChildAction.RESTART
    assert on_child_exit(1, stopping=False, recent_restarts=[NOW - 5] * 4, now=NOW) is ChildAction.RESTART


def test_children_that_keep_dying_make_the_parent_give_up() -> None:
    recent = [NOW - 50, NOW - 40, NOW - 30, NOW - 20, NOW - 10]
    assert on_child_exit(-9, stopping=False, recent_restarts=recent, now=NOW) is ChildAction.GIVE_UP
    # Restarts older than the window no longer count.
    old = [NOW - 500] * 10
    assert on_child_exit(-9, stopping=False, recent_restarts=old, now=NOW) is ChildAction.RESTART


def test_a_child_is_a_plain_jobqueue_worker_command_with_its_own_id() -> None:
    args = ["worker", "--app", "m:app", "--queues", "q", "--pool", "thread"]
    assert child_command(args, "pod_1", 42) == [
        sys.executable, "-m", "jobqueue", *args, "--worker-id", "pod_1", "--parent-pid", "42",
    ]  # fmt: skip
