"""Redis time per script call as a queue grows: the two transitions issue 14 asks to keep flat.

- fan-out: registering one more child on a parent that already has n children (``enqueue`` with
  ``depends_on``); the old layout rewrote the parent's whole JSON child list on every registration.
- recovery: recovering every lease of one dead worker (10 leases) while the queue holds n leases of
  other workers; the old script read every lease of the queue to find that worker's.

Redis time is the server's own EVALSHA time from ``INFO commandstats``, reset before each measured call,
so client and network time are not in it; the table gives the median and the mean over the samples (on
a loaded machine a call can be descheduled mid-run, which the mean shows and the median mostly does not).
Runs on a private embedded Redis.

    python -m bench.script_scaling [--sizes 1000 10000] [--samples 200]
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.broker.completion_calls import build_ack
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.lease_recovery import build_recover
from jobqueue.broker.leases import Outcome, build_fetch, parse_fetch
from jobqueue.broker.redis_io import run_script, run_scripts
from jobqueue.embedded.redis_server import RedisServer

DEAD_WORKER_LEASES = 10


@dataclass(frozen=True)
class Row:
    """One measurement: which transition, at which size, and the Redis time per call."""

    transition: str
    size: int
    calls: int
    median_usec: float
    mean_usec: float


def _server_usec(client: Client, run: Callable[[], Any]) -> tuple[float, Any]:
    """(Redis time in µs of the EVALSHA calls ``run`` makes, what ``run`` returned)."""
    client.redis.config_resetstat()
    result = run()
    stats = client.redis.info("commandstats").get("cmdstat_evalsha", {})
    return float(stats.get("usec", 0.0)), result


def _row(transition: str, size: int, usecs: list[float]) -> Row:
    return Row(transition, size, len(usecs), statistics.median(usecs), statistics.fmean(usecs))


def fan_out(client: Client, size: int, samples: int) -> Row:
    """Register ``size`` children on one parent; Redis time per call of the last ``samples``."""
    queue = f"fan{size}"
    parent = client.enqueue("parent", [], queue=queue).id
    for i in range(size - samples):
        client.enqueue("child", [i], queue=queue, depends_on=[parent])
    usecs = [
        _server_usec(client, lambda: client.enqueue("child", [0], queue=queue, depends_on=[parent]))[0]
        for _ in range(samples)
    ]
    return _row("register child (fan-out)", size, usecs)


def recovery(client: Client, size: int, samples: int) -> Row:
    """``size`` leases in one queue, ``DEAD_WORKER_LEASES`` of them held by one worker: Redis time per
    call of recovering that worker's leases. Each sample recovers fresh tasks (the recovered ones are
    run to completion by another worker), so no task's lost-lease history grows across samples."""
    queue = f"rec{size}"
    others = size - DEAD_WORKER_LEASES
    for start in range(0, others, 1000):
        client.enqueue_many(
            [make_request("noop", [i], queue=queue) for i in range(start, min(others, start + 1000))]
        )
    run_scripts(
        client.redis,
        [build_fetch(client.settings, queue, min(100, others - s), f"w{s}") for s in range(0, others, 100)],
    )
    recover = build_recover(client.settings, queue, "dead")
    usecs = []
    for _ in range(samples):
        client.enqueue_many([make_request("noop", [i], queue=queue) for i in range(DEAD_WORKER_LEASES)])
        run_script(client.redis, build_fetch(client.settings, queue, DEAD_WORKER_LEASES, "dead"))
        usec, reply = _server_usec(client, lambda: run_script(client.redis, recover))
        assert int(reply[0]) == DEAD_WORKER_LEASES, reply
        usecs.append(usec)
        fetched = run_script(client.redis, build_fetch(client.settings, queue, DEAD_WORKER_LEASES, "done"))
        finish(client, queue, fetched)
    return _row("recover one worker's leases", size, usecs)


def finish(client: Client, queue: str, fetch_reply: list[object]) -> None:
    """Ack what a fetch leased to the worker "done" (trees before the held-lease index take no worker)."""
    jobs = parse_fetch(queue, fetch_reply).jobs
    done = [(job, Outcome.succeeded(job.id, job.token, "null")) for job in jobs]
    worker: dict[str, Any] = {}
    if "worker_id" in inspect.signature(build_ack).parameters:
        worker = {"worker_id": "done"}
    run_script(client.redis, build_ack(client.settings, done, **worker))


def run(sizes: list[int], samples: int, data_dir: Path) -> list[Row]:
    """Every transition at every size, each in its own key prefix on one dedicated Redis."""
    server = RedisServer(data_dir).start()
    try:
        rows: list[Row] = []
        for size in sizes:
            # Recovery samples re-lease the same tasks: no poison limit, so each is requeued (not dead).
            settings = Settings(
                redis_url=SecretStr(server.url), key_prefix=f"ss{size}", max_lost_leases=10**9
            )
            client = Client(settings)
            rows.append(fan_out(client, size, samples))
            rows.append(recovery(client, size, min(samples, 100)))
            client.close()
        return rows
    finally:
        server.stop()


def table(rows: list[Row]) -> str:
    """A markdown table of the rows."""
    lines = [
        "| transition | size (children / leases) | calls | Redis µs per call, median | mean |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.transition} | {r.size:,} | {r.calls} | {r.median_usec:.0f} | {r.mean_usec:.0f} |")
    return "\n".join(lines)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.script_scaling", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(table(run(args.sizes, args.samples, Path(tmp))))


if __name__ == "__main__":
    main()
