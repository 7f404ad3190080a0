"""jobqueue alone: how its throughput and costs move with its own settings and with the load it carries.

    python -m bench.jobqueue_suite [--sections workers,pools,flow,depth,payload] [--tasks 5000]
                                   [--repeats 3] [--depths 1000,100000,1000000] [--payloads 100,10000,100000]

Sections (each figure is a median over ``--repeats`` runs, with its spread):

- workers: 1, 2 and 4 ``jobqueue worker`` processes side by side (thread pool of 16 each).
- pools: one worker with the process (4), thread (16) and async (64) pools.
- flow: the thread-pool worker with no flow control, then with a rate limit, a max in-flight limit and the
  weighted priority policy all on, tasks spread over the three priorities (limits set high, so only the
  checks' cost shows, as in bench.flow_cost).
- depth: enqueue one by one and dequeue (the worker's fetch script + pipelined acks, batches of 16, no
  task execution: only the Redis side depends on queue length) with 1k, 100k and 1M tasks already waiting.
- payload: enqueue one by one, batch enqueue and processing with a 100 B, 10 KB and 100 KB argument.

Every processing run checks that each task ran exactly once (bench.runs); a loss fails the run.
Runs on its own dedicated Redis server, like ``python -m bench``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from pydantic import SecretStr

from bench.adapters import ADAPTERS
from bench.adapters.base import Adapter, WorkerSetting
from bench.adapters.jobqueue_adapter import APP
from bench.flow_cost import lease_and_ack
from bench.peers_env import main_bin_dir
from bench.redis_stats import cost_between, snapshot
from bench.report import command_line, replace_results
from bench.runner import REPO_ROOT, Runner, Sample
from bench.suite_report import describe, docs_section
from jobqueue import Client, Settings
from jobqueue.broker.enqueue import EnqueueRequest, make_request
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.models import Priority

QUEUE = "bench"
SECTIONS = ("workers", "pools", "flow", "depth", "payload")
DOCS_MARKERS = ("<!-- bench:jobqueue:start -->", "<!-- bench:jobqueue:end -->")
PRIORITIES = (Priority.HIGH, Priority.MEDIUM, Priority.LOW)
# Payload runs keep at most this many argument bytes in Redis at once (100 KB x 2,000 = 200 MB).
PAYLOAD_BYTES_IN_FLIGHT = 200_000_000
DEQUEUE_BATCH = 16

RequestMaker = Callable[[int], EnqueueRequest]


def worker(pool: str, concurrency: int) -> WorkerSetting:
    """``jobqueue worker`` with one pool (same command as the jobqueue adapter)."""

    def argv(bin_dir: Path, redis_url: str) -> list[str]:
        return [
            str(bin_dir / "python"), "-m", "jobqueue", "--log-level", "WARNING", "worker",
            "--app", APP, "--queues", QUEUE, "--pool", pool, "--concurrency", str(concurrency),
        ]  # fmt: skip

    return WorkerSetting(f"jobqueue worker --pool {pool} --concurrency {concurrency}", argv)


def noop_request(
    name: str = "noop", payload: str | None = None, mixed_priorities: bool = False, queue: str = QUEUE
) -> RequestMaker:
    """Build request ``seq`` of a run (the task records ``seq``; bench.tasks.jobqueue_tasks)."""

    def make(seq: int) -> EnqueueRequest:
        args: list[object] = [seq] if payload is None else [seq, payload]
        priority = PRIORITIES[seq % 3] if mixed_priorities else Priority.MEDIUM
        return make_request(name, args, queue=queue, priority=priority)

    return make


class Suite:
    """The sections, against one Redis server; enqueues in-process with the project's Client."""

    def __init__(self, runner: Runner, client: Client, repeats: int, emit: Callable[[Sample], None]) -> None:
        self.runner = runner
        self.client = client
        self.repeats = repeats
        self.emit = emit
        self.samples: list[Sample] = []
        # Enqueued and dequeued per depth sample: small against the depth, so the depth barely moves.
        self.depth_sample = 2000

    def _keep(self, sample: Sample) -> Sample:
        self.samples.append(sample)
        self.emit(sample)
        return sample

    def _load(self, make: RequestMaker, n: int, first: int = 0) -> None:
        """Pre-load tasks ``first`` .. ``first + n - 1`` in pipelined batches (not measured)."""
        for lo in range(first, first + n, 1000):
            self.client.enqueue_many([make(seq) for seq in range(lo, min(first + n, lo + 1000))])

    def _process(
        self, label: str, rep: int, setting: WorkerSetting, make: RequestMaker, copies: int = 1
    ) -> None:
        """Flush, pre-load ``runner.tasks`` tasks, run the worker command(s); one 'process' sample."""
        self.runner.flush()
        self._load(make, self.runner.tasks)
        adapter: Adapter = replace(ADAPTERS["jobqueue"], name=label, tuned=setting)
        sample = self.runner.process(adapter, rep, "tuned", copies=copies)
        self._keep(replace(sample, metric="process", detail={**sample.detail, "setting": setting.describe}))

    def _enqueue(
        self, label: str, rep: int, metric: str, make: RequestMaker, first: int, n: int, batch: int
    ) -> None:
        """Time ``n`` enqueues (one by one when batch == 1) with Redis cost; one sample."""
        before = snapshot(self.runner.redis)
        start = time.perf_counter()
        if batch == 1:
            for seq in range(first, first + n):
                self.client.enqueue_many([make(seq)])
        else:
            for lo in range(first, first + n, batch):
                self.client.enqueue_many([make(seq) for seq in range(lo, min(first + n, lo + batch))])
        seconds = time.perf_counter() - start
        cost = cost_between(before, snapshot(self.runner.redis))
        self._keep(Sample(label, rep, metric, n / seconds, True, {"seconds": seconds, **cost.per_task(n)}))

    def workers(self) -> None:
        """1, 2, 4 worker processes, thread pool of 16 each."""
        for rep in range(1, self.repeats + 1):
            for copies in (1, 2, 4):
                label = "1 worker process" if copies == 1 else f"{copies} worker processes"
                self._process(label, rep, worker("thread", 16), noop_request(), copies)

    def pools(self) -> None:
        """The three pools of one worker."""
        for rep in range(1, self.repeats + 1):
            self._process("process pool (4)", rep, worker("process", 4), noop_request())
            self._process("thread pool (16)", rep, worker("thread", 16), noop_request())
            self._process("async pool (64)", rep, worker("async", 64), noop_request("anoop"))

    def flow(self) -> None:
        """No flow control vs rate limit + max in-flight + weighted priorities over mixed priorities."""
        admin = QueueAdmin(self.client)
        for rep in range(1, self.repeats + 1):
            self._process("no flow control", rep, worker("thread", 16), noop_request())
            self.runner.flush()
            label = "rate limit + max in-flight + weighted, 3 priorities"
            self._load(noop_request(mixed_priorities=True), self.runner.tasks)
            admin.set_rate_limit(QUEUE, max_tasks_per_second=10_000_000, burst=1_000_000)
            admin.set_max_in_flight(QUEUE, 10_000)
            admin.set_priority_policy(QUEUE, "weighted", (6, 3, 1))
            adapter = replace(ADAPTERS["jobqueue"], name=label, tuned=worker("thread", 16))
            sample = self.runner.process(adapter, rep, "tuned")
            self._keep(replace(sample, metric="process"))

    def depth(self, depths: Sequence[int]) -> None:
        """Enqueue and dequeue cost with ``depth`` tasks already waiting.

        One queue per depth, all loaded first, then measured in turn within each repetition, so machine
        load that drifts during the run hits every depth alike. All queues share one keyspace: the
        smallest depth is also measured alone, before the others are loaded and after they are flushed
        (rows "..., alone" and "..., alone again"), which shows what a large keyspace costs on its own.
        """
        self.runner.flush()
        smallest, *others = sorted(depths)
        queues = {depth: f"depth-{depth}" for depth in depths}
        next_seq = {depth: depth for depth in depths}
        self._load(noop_request(queue=queues[smallest]), smallest)
        for rep in range(1, self.repeats + 1):
            self._depth_sample(f"{smallest:,} waiting, alone", rep, queues[smallest], next_seq, smallest)
        for depth in others:
            print(f"  loading {depth:,} waiting tasks ...", flush=True)
            self._load(noop_request(queue=queues[depth]), depth)
        memory = self.runner.redis.info("memory")["used_memory"]
        print(
            f"  Redis used_memory {memory / 2**20:,.0f} MiB, {self.runner.redis.dbsize():,} keys", flush=True
        )
        for rep in range(1, self.repeats + 1):
            for depth in sorted(depths):
                self._depth_sample(f"{depth:,} waiting", rep, queues[depth], next_seq, depth)
        # The control: the smallest depth alone again, so a difference between the "alone" row and the
        # same depth beside the large queues is told apart from machine load drifting during the run.
        self.runner.flush()
        next_seq[smallest] = smallest
        self._load(noop_request(queue=queues[smallest]), smallest)
        for rep in range(1, self.repeats + 1):
            self._depth_sample(
                f"{smallest:,} waiting, alone again", rep, queues[smallest], next_seq, smallest
            )

    def _depth_sample(self, label: str, rep: int, queue: str, next_seq: dict[int, int], depth: int) -> None:
        """Enqueue ``depth_sample`` tasks one by one, then dequeue as many: the depth is back where it was."""
        self._enqueue(
            label, rep, "enqueue_one", noop_request(queue=queue), next_seq[depth], self.depth_sample, 1
        )
        next_seq[depth] += self.depth_sample
        before = snapshot(self.runner.redis)
        start = time.perf_counter()
        round_trips = lease_and_ack(self.client, queue, self.depth_sample, DEQUEUE_BATCH)
        seconds = time.perf_counter() - start
        cost = cost_between(before, snapshot(self.runner.redis))
        detail = {
            "seconds": seconds,
            "round_trips": round_trips / self.depth_sample,
            **cost.per_task(self.depth_sample),
        }
        self._keep(Sample(label, rep, "dequeue", self.depth_sample / seconds, True, detail))

    def payload(self, sizes: Sequence[int]) -> None:
        """Enqueue (one by one, batch) and processing with an argument of each size."""
        full = self.runner.tasks
        for rep in range(1, self.repeats + 1):
            for size in sizes:
                label = f"payload {size:,} B"
                make = noop_request("noop_payload", "x" * size)
                n = max(100, min(full, PAYLOAD_BYTES_IN_FLIGHT // max(size, 1)))
                self.runner.tasks = n
                try:
                    self.runner.flush()
                    self._enqueue(label, rep, "enqueue_one", make, 0, n, 1)
                    self.runner.flush()
                    self._enqueue(label, rep, "enqueue_batch", make, 0, n, 100)
                    adapter = replace(ADAPTERS["jobqueue"], name=label, tuned=worker("thread", 16))
                    sample = self.runner.process(adapter, rep, "tuned")
                    self._keep(replace(sample, metric="process", detail={**sample.detail, "tasks": n}))
                finally:
                    self.runner.tasks = full


def _ints(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.jobqueue_suite``."""
    parser = argparse.ArgumentParser(prog="python -m bench.jobqueue_suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated")
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per processing run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--depths", default="1000,100000,1000000", help="waiting tasks, comma-separated")
    parser.add_argument("--depth-sample", type=int, default=2000, help="tasks enqueued + dequeued per sample")
    parser.add_argument("--payloads", default="100,10000,100000", help="argument bytes, comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/<timestamp>-jobqueue")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; known: {list(SECTIONS)}")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out: Path = (args.out or REPO_ROOT / "bench" / "results" / f"{stamp}-jobqueue").resolve()
    out.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()
    server = RedisServer(out / "redis", appendonly=False).start()
    client = Client(Settings(redis_url=SecretStr(server.url)))
    try:
        runner = Runner(server.url, out, {"main": main_bin_dir()}, args.tasks)
        print(f"bench.jobqueue_suite: redis {server.url}, sections {sections}, results in {out}", flush=True)
        suite = Suite(runner, client, args.repeats, lambda s: print(describe(s), flush=True))
        suite.depth_sample = args.depth_sample
        for section in sections:
            print(f"[{section}]", flush=True)
            if section == "depth":
                suite.depth(_ints(args.depths))
            elif section == "payload":
                suite.payload(_ints(args.payloads))
            else:
                getattr(suite, section)()
        redis_version = str(runner.redis.info("server")["redis_version"])
    finally:
        client.close()
        server.stop()
    meta: dict[str, object] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command_line("bench.jobqueue_suite", argv),
        "redis": redis_version,
        "load": f"{load_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end",
        "tasks": args.tasks,
        "repeats": args.repeats,
    }
    (out / "samples.json").write_text(
        json.dumps({"meta": meta, "samples": [asdict(s) for s in suite.samples]})
    )
    section = docs_section(suite.samples, meta)
    print()
    print(section)
    if not args.no_docs:
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, section, DOCS_MARKERS))
        print(f"wrote {args.docs}")
    return 0 if all(s.ok for s in suite.samples) else 1


if __name__ == "__main__":
    raise SystemExit(main())
