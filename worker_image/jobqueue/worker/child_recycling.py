"""When the process pool replaces a child between tasks: after N tasks, or once its memory passed a limit.

A task that leaks (a C extension's cache, a module-level list, fragmentation) grows its child for ever; a
fresh child after a bounded number of tasks or bytes is the cure Celery's ``worker_max_tasks_per_child`` and
``worker_max_memory_per_child`` apply. The decision is pure; reading a child's resident set is the one bit
of I/O, kept here beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from jobqueue.errors import ValidationError


@dataclass(frozen=True)
class ChildLimits:
    """``max_tasks``: tasks a child runs before it is replaced; ``max_memory_bytes``: resident set size
    past which a child is replaced after its task. None = no limit."""

    max_tasks: int | None = None
    max_memory_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.max_tasks is not None and self.max_tasks < 1:
            raise ValidationError("max_tasks_per_child", "must be >= 1 (or unset for no limit)")
        if self.max_memory_bytes is not None and self.max_memory_bytes < 1:
            raise ValidationError("max_memory_per_child", "must be >= 1 byte (or unset for no limit)")

    @property
    def watches_memory(self) -> bool:
        """Whether a child's resident set must be read after each task."""
        return self.max_memory_bytes is not None


def retirement_reason(limits: ChildLimits, tasks_done: int, resident_bytes: int | None) -> str | None:
    """Why a child that just finished its ``tasks_done``-th task must be replaced, or None to keep it.

    An unknown resident size (the platform has no /proc) never retires a child: the memory limit is
    documented as Linux-only rather than guessed at."""
    if limits.max_tasks is not None and tasks_done >= limits.max_tasks:
        return f"ran {tasks_done} tasks (max_tasks_per_child={limits.max_tasks})"
    if (
        limits.max_memory_bytes is not None
        and resident_bytes is not None
        and resident_bytes > limits.max_memory_bytes
    ):
        return (
            f"resident memory {resident_bytes} bytes is over max_memory_per_child={limits.max_memory_bytes}"
        )
    return None


def resident_bytes(pid: int) -> int | None:
    """The current resident set size of process ``pid`` (Linux /proc), or None when it cannot be read
    (another platform, or the process is gone). The current size, not the peak: a child that freed its
    memory again is not replaced for a spike it no longer holds."""
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    if len(fields) < 2:
        return None
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
