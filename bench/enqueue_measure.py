"""One enqueue measurement for ``bench.enqueue_cost``, run as a subprocess inside the system's own venv:

    python -m bench.enqueue_measure SYSTEM one|batch N
    python -m bench.enqueue_measure floor ping|evalsha N

Prints one JSON object of per-task figures. Standard library, redis-py and the system's task module only
(it runs in the peers' venvs too).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import Any

import redis


def _redis_costs(conn: redis.Redis) -> tuple[float, float]:
    """(server CPU seconds, usec spent in the producer commands: EVALSHA, LPUSH, PING) so far."""
    cpu: dict[str, Any] = conn.info("cpu")
    stats: dict[str, Any] = conn.info("commandstats")
    usec = sum(
        int(stats[k]["usec"]) for k in ("cmdstat_evalsha", "cmdstat_lpush", "cmdstat_ping") if k in stats
    )
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), usec / 1e6


class _Floor:
    """The round-trip floor of one-by-one enqueue (system ``floor``): a PING (mode ``ping``) or an EVALSHA
    of ``return 1`` (mode ``evalsha``) per call, each written and read on one kept connection the way
    jobqueue's wire path does (``send_packed_command`` / ``read_response``), so what is left is the
    socket round trip and redis-py's framing."""

    def __init__(self, conn: redis.Redis, mode: str) -> None:
        pool = conn.connection_pool
        try:
            self.connection = pool.get_connection()
        except TypeError:  # redis-py before 5.3 wants a command name
            self.connection = pool.get_connection("PING")
        if mode == "ping":
            self.command: tuple[Any, ...] = ("PING",)
        else:
            self.command = ("EVALSHA", conn.script_load("return 1"), 0)

    def enqueue_one(self, seq: int) -> None:
        c = self.connection
        c.send_packed_command(c.pack_command(*self.command), check_health=False)
        c.read_response()


def measure(system: str, mode: str, n: int) -> dict[str, float]:
    """Run in the system's venv: enqueue ``n`` tasks one by one or in batches of 1,000; per-task figures.
    System ``floor``, mode ``ping`` or ``evalsha``: the round-trip floor, as one-by-one."""
    conn = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    tasks: Any = (
        _Floor(conn, mode) if system == "floor" else importlib.import_module(f"bench.tasks.{system}_tasks")
    )
    if system == "floor":
        mode = "one"
    if mode == "one":
        tasks.enqueue_one(-1)  # connect and load the scripts outside the measurement
    else:
        tasks.enqueue_batch([-1])
    before = _redis_costs(conn)
    cpu_start = time.process_time()
    start = time.perf_counter()
    if mode == "one":
        for seq in range(n):
            tasks.enqueue_one(seq)
    else:
        for first in range(0, n, 1000):
            tasks.enqueue_batch(list(range(first, min(n, first + 1000))))
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    after = _redis_costs(conn)
    return {
        "rate": n / wall,
        "client_cpu_us": cpu * 1e6 / n,
        "redis_cpu_us": (after[0] - before[0]) * 1e6 / n,
        "command_us": (after[1] - before[1]) * 1e6 / n,
    }


def main(argv: list[str] | None = None) -> int:
    """``SYSTEM MODE N`` -> the figures as JSON on stdout."""
    system, mode, n = argv if argv is not None else sys.argv[1:]
    print(json.dumps(measure(system, mode, int(n))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
