"""Redis-side cost of a phase, from INFO deltas: commands executed and CPU time used by the server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

# Our own commands between two snapshots; never counted against a system.
HARNESS_COMMANDS = frozenset({"info", "flushdb", "ping"})
SCRIPT_COMMANDS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})


@dataclass(frozen=True)
class Snapshot:
    """Command counters and CPU seconds at one moment."""

    calls: dict[str, int]
    cpu_seconds: float


@dataclass(frozen=True)
class Cost:
    """What a phase cost Redis."""

    commands: int  # every command executed, including those run inside scripts
    script_calls: int  # EVAL / EVALSHA / FCALL among them
    cpu_seconds: float
    by_command: dict[str, int]

    def per_task(self, n: int) -> dict[str, float]:
        """Commands, script calls and CPU microseconds per task."""
        n = max(n, 1)
        return {
            "commands": self.commands / n,
            "script_calls": self.script_calls / n,
            "cpu_us": self.cpu_seconds * 1e6 / n,
        }


def snapshot(conn: redis.Redis) -> Snapshot:
    """INFO commandstats and INFO cpu, in one call each."""
    stats: dict[str, Any] = conn.info("commandstats")
    cpu: dict[str, Any] = conn.info("cpu")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
    return Snapshot(calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]))


def cost_between(before: Snapshot, after: Snapshot) -> Cost:
    """The delta of two snapshots, without the harness's own commands."""
    by_command = {
        name: after.calls[name] - before.calls.get(name, 0)
        for name in after.calls
        if name not in HARNESS_COMMANDS and after.calls[name] != before.calls.get(name, 0)
    }
    return Cost(
        commands=sum(by_command.values()),
        script_calls=sum(v for k, v in by_command.items() if k in SCRIPT_COMMANDS),
        cpu_seconds=after.cpu_seconds - before.cpu_seconds,
        by_command=by_command,
    )
