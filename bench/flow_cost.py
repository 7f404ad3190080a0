"""What flow control costs per task: the broker protocol (batch fetch + pipelined acks) run against one
Redis with no flow control, then with a rate limit, a max in-flight limit and weighted priorities all on.

Round trips per task must be identical (every check is inside the one fetch script); the figures show
Redis commands and Redis CPU per task, which is the price of those checks.

    python -m bench.flow_cost [--tasks 20000] [--batch 16]

The table is written into docs/benchmarks.md between the ``bench:flow`` markers unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from bench.report import command_line, measured_with, replace_results
from bench.runner import REPO_ROOT
from jobqueue import Client, Settings
from jobqueue.broker.completion_calls import plan_completions
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.redis_io import run_script, run_scripts
from jobqueue.embedded.redis_server import RedisServer

QUEUE = "flowcost"
DOCS_MARKERS = ("<!-- bench:flow:start -->", "<!-- bench:flow:end -->")


@dataclass(frozen=True)
class Cost:
    """Per-task cost of one configuration."""

    name: str
    tasks: int
    round_trips_per_task: float
    commands_per_task: float
    redis_cpu_us_per_task: float
    tasks_per_second: float


def _redis_totals(client: Client) -> tuple[int, float]:
    stats = client.redis.info("commandstats")
    calls = sum(int(v["calls"]) for v in stats.values())
    cpu = client.redis.info("cpu")
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def measure(
    client: Client, name: str, tasks: int, batch: int, configure: Callable[[QueueAdmin], None]
) -> Cost:
    """Enqueue ``tasks``, then lease and ack them all in batches, counting what Redis did."""
    admin = QueueAdmin(client)
    configure(admin)
    for start in range(0, tasks, 1000):
        client.enqueue_many(
            [make_request("noop", [i], queue=QUEUE) for i in range(start, min(tasks, start + 1000))]
        )
    client.redis.config_resetstat()
    calls_before, cpu_before = _redis_totals(client)
    started = time.perf_counter()
    round_trips = lease_and_ack(client, QUEUE, tasks, batch)
    elapsed = time.perf_counter() - started
    calls_after, cpu_after = _redis_totals(client)
    # INFO itself and CONFIG RESETSTAT show up once each in the counts; negligible at these sizes.
    return Cost(
        name=name,
        tasks=tasks,
        round_trips_per_task=round_trips / tasks,
        commands_per_task=(calls_after - calls_before) / tasks,
        redis_cpu_us_per_task=(cpu_after - cpu_before) * 1e6 / tasks,
        tasks_per_second=tasks / elapsed,
    )


def lease_and_ack(client: Client, queue: str, count: int, batch: int) -> int:
    """What a worker does to Redis for ``count`` tasks, without running them: lease up to ``batch`` per
    fetch script call, then record the batch's successes as the worker does (``plan_completions``), in one
    pipeline. Returns the round trips made."""
    round_trips = done = 0
    while done < count:
        fetch = build_fetch(client.settings, queue, min(batch, count - done), "bench")
        reply = parse_fetch(queue, run_script(client.redis, fetch))
        round_trips += 1
        if not reply.jobs:
            if reply.wait_ms > 0:
                time.sleep(reply.wait_ms / 1000)
            continue
        done_batch = [(j, Outcome(j.id, j.token, OutcomeKind.SUCCESS, "null")) for j in reply.jobs]
        # As the worker records outcomes: successes grouped into fenced ack calls, sent in one pipeline.
        plan = plan_completions(client.settings, done_batch, lambda _job: None, worker_id="bench")
        run_scripts(client.redis, plan.calls)
        round_trips += 1
        done += len(reply.jobs)
    return round_trips


def no_flow_control(admin: QueueAdmin) -> None:
    """Strict priorities, no limits (the defaults)."""


def all_flow_control(admin: QueueAdmin) -> None:
    """A rate limit high enough never to hold anything back (so only the check's cost is measured), a max
    in-flight limit above the batch, and the weighted priority policy."""
    admin.set_rate_limit(QUEUE, max_tasks_per_second=10_000_000, burst=1_000_000)
    admin.set_max_in_flight(QUEUE, 10_000)
    admin.set_priority_policy(QUEUE, "weighted", (6, 3, 1))


def run(tasks: int, batch: int, data_dir: Path) -> list[Cost]:
    """Both configurations on one dedicated Redis, each in its own key prefix."""
    server = RedisServer(data_dir).start()
    try:
        results: list[Cost] = []
        configurations = (
            ("no flow control", no_flow_control),
            ("rate limit + max in-flight + weighted", all_flow_control),
        )
        for name, configure in configurations:
            client = Client(Settings(redis_url=SecretStr(server.url), key_prefix=f"fc{len(results)}"))
            results.append(measure(client, name, tasks, batch, configure))
            client.close()
        return results
    finally:
        server.stop()


def table(results: list[Cost]) -> str:
    """A markdown table of the results."""
    lines = ["| configuration | round trips / task | Redis commands / task | Redis CPU µs / task | tasks/s |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        lines.append(f"| {r.name} | {r.round_trips_per_task:.3f} | {r.commands_per_task:.1f} | "
                     f"{r.redis_cpu_us_per_task:.1f} | {r.tasks_per_second:,.0f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.flow_cost", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        results = run(args.tasks, args.batch, Path(tmp))
    command = command_line("bench.flow_cost", argv)
    section = (
        measured_with(command) + f", load average "
        f"{load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end; {args.tasks:,} tasks per "
        f"configuration, fetched {args.batch} at a time.\n\n" + table(results)
    )
    print(section)
    if not args.no_docs:
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, section, DOCS_MARKERS))


if __name__ == "__main__":
    main()
