"""The process pool's decision to replace a child between tasks (pure)."""

from __future__ import annotations

import os

import pytest

from jobqueue.errors import ValidationError
from jobqueue.worker.child_recycling import ChildLimits, resident_bytes, retirement_reason

MIB = 1024 * 1024


def test_no_limits_never_retire() -> None:
    assert retirement_reason(ChildLimits(), 10**9, 10**15) is None


def test_task_limit_retires_at_the_nth_task() -> None:
    limits = ChildLimits(max_tasks=3)
    assert retirement_reason(limits, 2, None) is None
    assert "max_tasks_per_child=3" in (retirement_reason(limits, 3, None) or "")


def test_memory_limit_retires_only_above_it_and_never_on_an_unknown_size() -> None:
    limits = ChildLimits(max_memory_bytes=100 * MIB)
    assert retirement_reason(limits, 1, 100 * MIB) is None
    assert "resident memory" in (retirement_reason(limits, 1, 100 * MIB + 1) or "")
    assert retirement_reason(limits, 1, None) is None


@pytest.mark.parametrize("kwargs", [{"max_tasks": 0}, {"max_tasks": -1}, {"max_memory_bytes": 0}])
def test_limits_below_one_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        ChildLimits(**kwargs)


def test_resident_bytes_reads_this_process_and_none_for_a_missing_one() -> None:
    if not os.path.exists("/proc/self/statm"):
        pytest.skip("no /proc")
    assert (resident_bytes(os.getpid()) or 0) > MIB
    assert resident_bytes(2**22 + 12345) is None  # above Linux's pid_max default
