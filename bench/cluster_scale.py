"""1 vs 3 queues on 1 vs 3 Redis shards: ``python -m bench.cluster_scale``.

Two topologies, started on 127.0.0.1 by tests/support/redis_topologies.py's helpers:

- **1 shard**: one standalone ``redis-server`` reached by ``redis://`` (what users run today);
- **3 shards**: a Redis Cluster of three primaries without replicas (replicas would add replication CPU
  to each shard's figure) reached by ``redis+cluster://``.

On each, one queue and three queues whose hash tags land on three different cluster shards (on the
standalone server all three share the one shard). For each cell and round:

- **enqueue 1-by-1**: ``Client.enqueue`` in a loop from this process, the tasks spread round-robin over
  the queues;
- **batch enqueue**: ``Client.enqueue_many`` in batches of ``--batch`` of one queue each, the batches
  round-robin over the queues;
- **processing**: the batch-enqueued tasks, then ``--workers`` ``jobqueue worker`` processes (the tuned
  setting of bench/adapters/jobqueue_adapter.py) serving every queue of the cell; the rate from the first
  task start to the last, and every task checked to have run exactly once.

Redis CPU is read per server from ``INFO cpu`` (``used_cpu_sys + used_cpu_user``) before and after each
phase, so the share each shard carries is visible even when the machine's cores cap the total.

    python -m bench.cluster_scale
    python -m bench.cluster_scale --tasks 2000 --rounds 1 --no-docs

The table is written into docs/benchmarks.md between the ``bench:cluster`` markers unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from pydantic import SecretStr
from redis.crc import key_slot
from tests.support.redis_topologies import ClusterTopology

from bench.adapters.jobqueue_adapter import APP
from bench.record import RUNS_FILE_ENV
from bench.report import command_line, markdown, replace_results
from bench.runner import REPO_ROOT, STALL_SECONDS, stop_worker
from bench.runs import RunCheck, check, count_lines
from jobqueue import Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.embedded.redis_server import RedisServer

DOCS_MARKERS = ("<!-- bench:cluster:start -->", "<!-- bench:cluster:end -->")
KEY_PREFIX = "cs"
TASK = "noop"  # bench/tasks/jobqueue_tasks.py: records its start, nothing else


@dataclass
class Shards:
    """The servers of one topology: a URL for jobqueue, one direct connection per primary."""

    label: str
    url: str
    primaries: list[redis.Redis]

    def cpu_seconds(self) -> list[float]:
        """used_cpu_sys + used_cpu_user of each primary, in order."""
        out = []
        for conn in self.primaries:
            cpu = conn.info("cpu")
            out.append(float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]))
        return out

    def flush(self) -> None:
        """Empty the dedicated bench servers between phases (never a shared server)."""
        for conn in self.primaries:
            conn.flushall()


@dataclass(frozen=True)
class Phase:
    """One measured phase: its rate and each shard's CPU seconds over its wall seconds."""

    rate: float | None
    seconds: float
    cpu: list[float]

    def shard_load(self) -> list[float]:
        """Each shard's Redis CPU as a fraction of one core during the phase."""
        return [c / self.seconds if self.seconds > 0 else 0.0 for c in self.cpu]


@contextmanager
def measured(shards: Shards, out: list[Phase], rate: Callable[[float], float | None]) -> Iterator[None]:
    """Time the body and take each shard's CPU delta around it; ``rate(seconds)`` gives the figure."""
    before = shards.cpu_seconds()
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    after = shards.cpu_seconds()
    out.append(Phase(rate(seconds), seconds, [a - b for a, b in zip(after, before, strict=True)]))


def queues_on_distinct_shards(cluster: ClusterTopology, count: int) -> list[str]:
    """``count`` queue names whose hash tag ``{name}`` is served by ``count`` different primaries."""
    ranges = cluster.nodes[0].client().execute_command("CLUSTER", "SLOTS")
    owners: dict[int, str] = {}
    names: list[str] = []
    for i in range(10_000):
        name = f"cq{i}"
        slot = key_slot(f"{KEY_PREFIX}:{{{name}}}".encode())
        owner = next(f"{r[2][0]}:{r[2][1]}" for r in ranges if int(r[0]) <= slot <= int(r[1]))
        if owner not in owners.values():
            owners[len(names)] = owner
            names.append(name)
            if len(names) == count:
                return names
    raise SystemExit(f"no {count} queue names on distinct shards")


def worker_argv(queues: Sequence[str], workers: int) -> list[str]:
    """The tuned jobqueue worker (thread pool of 8, ``workers`` processes) on every queue of the cell."""
    return [
        sys.executable, "-m", "jobqueue", "--log-level", "WARNING", "worker", "--app", APP,
        "--queues", ",".join(queues), "--pool", "thread", "--concurrency", "8", "--processes", str(workers),
    ]  # fmt: skip


def process(
    shards: Shards, queues: Sequence[str], tasks: int, workers: int, work: Path
) -> tuple[Phase, RunCheck]:
    """Start the worker on ``tasks`` pre-loaded tasks; wait until every one ran (or progress stalls)."""
    runs_file = work / f"{shards.label}-{len(queues)}q-{time.monotonic_ns()}.runs"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
        "BENCH_REDIS_URL": shards.url,
        "JOBQUEUE_REDIS_URL": shards.url,
        "JOBQUEUE_KEY_PREFIX": KEY_PREFIX,
        RUNS_FILE_ENV: str(runs_file),
    }
    # Redis CPU from the first task start to the last task's: the worker's start-up (registration,
    # script loading, the first idle wait) is not part of processing.
    first: tuple[float, list[float]] | None = None
    with (work / "worker.log").open("ab") as log:
        # Own session: the worker and the processes it forks form one group to stop.
        worker = subprocess.Popen(
            worker_argv(queues, workers), cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            seen, last_progress = 0, time.monotonic()
            while True:
                n = count_lines(runs_file)
                if n and first is None:
                    first = (time.perf_counter(), shards.cpu_seconds())
                if n >= tasks and check(runs_file, range(tasks)).lost == 0:
                    break
                if n > seen:
                    seen, last_progress = n, time.monotonic()
                elif time.monotonic() - last_progress > STALL_SECONDS or worker.poll() is not None:
                    break
                time.sleep(0.005)
            end = (time.perf_counter(), shards.cpu_seconds())
            time.sleep(0.3)  # late duplicates surface before the count
        finally:
            stop_worker(worker)
    result = check(runs_file, range(tasks))
    start = first or end
    cpu = [a - b for a, b in zip(end[1], start[1], strict=True)]
    return Phase(result.rate if result.ok else None, end[0] - start[0], cpu), result


def batches(queues: Sequence[str], tasks: int, batch: int) -> list[tuple[str, list[int]]]:
    """(queue, sequence numbers) per batch: queue i gets the numbers n with n % len(queues) == i, as the
    one-by-one phase sends them, cut into batches of at most ``batch``, taken round-robin."""
    per_queue = [list(range(i, tasks, len(queues))) for i in range(len(queues))]
    cut = [
        [(q, seqs[k : k + batch]) for k in range(0, len(seqs), batch)]
        for q, seqs in zip(queues, per_queue, strict=True)
    ]
    out = []
    for round_ in range(max(len(c) for c in cut)):
        out += [c[round_] for c in cut if round_ < len(c)]
    return out


def measure_cell(
    shards: Shards, queues: Sequence[str], tasks: int, batch: int, workers: int, work: Path
) -> tuple[list[Phase], RunCheck]:
    """Enqueue 1-by-1, batch enqueue, processing of the batch-enqueued tasks."""
    settings = Settings(redis_url=SecretStr(shards.url), key_prefix=KEY_PREFIX)
    phases: list[Phase] = []
    shards.flush()
    client = Client(settings)
    try:
        client.enqueue(TASK, [-1], queue=queues[0])  # connections and script loading, not measured
        with measured(shards, phases, lambda s: tasks / s):
            for seq in range(tasks):
                client.enqueue(TASK, [seq], queue=queues[seq % len(queues)])
        shards.flush()
        with measured(shards, phases, lambda s: tasks / s):
            # One queue per batch, the batches round-robin, each queue the same number of tasks: a batch
            # of interleaved queues breaks into one script call per task (a call carries a run of one
            # queue's tasks, broker/batch_enqueue.py).
            for queue, seqs in batches(queues, tasks, batch):
                client.enqueue_many([make_request(TASK, [s], queue=queue) for s in seqs])
    finally:
        client.close()
    phase, result = process(shards, queues, tasks, workers, work)
    return [*phases, phase], result


def _rate(values: list[float | None]) -> str:
    ok = [v for v in values if v is not None]
    if len(ok) < len(values):
        return f"FAILED ({len(values) - len(ok)}/{len(values)})"
    return f"{statistics.median(ok):,.0f}"


def _loads(phases: list[Phase]) -> str:
    """Median per shard of each shard's share of a core: '62% / 1% / 1%'."""
    per_shard = zip(*(p.shard_load() for p in phases), strict=True)
    return " / ".join(f"{statistics.median(s):.0%}" for s in per_shard)


def _ceiling(phases: list[Phase], tasks: int) -> str:
    """Tasks/s the busiest shard could carry at one full core: where Redis would cap the rate once the
    clients had cores enough (median over the rounds)."""
    return f"{statistics.median(tasks / max(*p.cpu, 1e-9) for p in phases):,.0f}"


def _us_per_task(phases: list[Phase], tasks: int) -> str:
    return f"{statistics.median(sum(p.cpu) for p in phases) * 1e6 / tasks:.0f}"


@contextmanager
def topologies(root: Path) -> Iterator[tuple[Shards, Shards, ClusterTopology]]:
    """A standalone server and a 3-primary cluster, stopped on the way out."""
    server = RedisServer(root / "standalone").start()
    cluster = ClusterTopology(root / "cluster", primaries=3, replicas_each=0)
    try:
        cluster.start()
        standalone = Shards("1 shard", server.url, [redis.Redis.from_url(server.url)])
        three = Shards("3 shards", cluster.url, [n.client() for n in cluster.nodes])
        yield standalone, three, cluster
    finally:
        cluster.stop()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Measure the four cells ``--rounds`` times, interleaved; print (and write) one markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_scale")
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="jobqueue worker processes (--processes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    results: dict[tuple[str, int], list[list[Phase]]] = {}
    checks: dict[tuple[str, int], list[RunCheck]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-scale-") as tmp, topologies(Path(tmp)) as topo:
        standalone, three, cluster = topo
        names = queues_on_distinct_shards(cluster, 3)
        cells = [(s, n) for s in (standalone, three) for n in (1, 3)]
        for rnd in range(args.rounds):
            for shards, n in cells[rnd % len(cells) :] + cells[: rnd % len(cells)]:
                cell = (names[:n], args.tasks, args.batch, args.workers, Path(tmp))
                phases, result = measure_cell(shards, *cell)
                results.setdefault((shards.label, n), []).append(phases)
                checks.setdefault((shards.label, n), []).append(result)
                shown = "FAILED" if phases[2].rate is None else f"{phases[2].rate:,.0f}/s"
                print(f"round {rnd + 1} {shards.label}, {n} queue(s): enqueue {phases[0].rate:,.0f}/s, "
                      f"batch {phases[1].rate:,.0f}/s, processing {shown}", flush=True)  # fmt: skip
    header = [
        "Redis", "queues", "enqueue 1-by-1 /s", "batch enqueue /s", "processing /s",
        "Redis CPU per shard, batch enqueue (of a core)", "Redis CPU per shard, processing (of a core)",
        "Redis CPU µs/task enq + proc (all shards)", "processing bound by the busiest shard /s",
        "dup / lost",
    ]  # fmt: skip
    rows = [header]
    for (label, n), runs in results.items():
        one, batch, proc = ([r[i] for r in runs] for i in range(3))
        got = checks[(label, n)]
        rows.append([
            label, str(n), _rate([p.rate for p in one]), _rate([p.rate for p in batch]),
            _rate([p.rate for p in proc]), _loads(batch), _loads(proc),
            f"{_us_per_task(batch, args.tasks)} + {_us_per_task(proc, args.tasks)}",
            _ceiling(proc, args.tasks),
            f"{sum(c.duplicates for c in got)} / {sum(c.lost for c in got)}",
        ])  # fmt: skip
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = command_line("bench.cluster_scale", argv)
    section = (
        f"Measured {stamp} with `{command}`, load average {load_start:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end, {os.cpu_count()} cores, medians of {args.rounds} interleaved "
        f"rounds of {args.tasks:,} tasks; processing by `jobqueue worker --pool thread --concurrency 8 "
        f"--processes {args.workers}` on every queue of the row; queues {', '.join(names)}.\n\n"
        + markdown(rows) + "\n"
    )  # fmt: skip
    print("\n" + section)
    if not args.no_docs:
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, section, DOCS_MARKERS))
        print(f"wrote {args.docs}")
    failed = any(c.duplicates or c.lost for got in checks.values() for c in got)
    return 1 if failed else 0


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    # The servers run in sessions of their own: only the finally blocks stop them.
    raise SystemExit(143)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    raise SystemExit(main())
