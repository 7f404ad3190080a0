"""``make soak`` / ``python -m bench.soak``: the whole system under normal load and faults for N minutes
(``SOAK_MINUTES``, default 10), then one table: tasks in, done, duplicates, lost, record complete, max
recorder lag, restarts, HTTP 500s. Exit status 1 when a guarantee broke.

The load mixes small and a few long tasks (through the Python client, and one in ten through the REST
API, whose task reads are driven too) with poison output: results and exceptions holding NUL and lone
surrogates, and results over the size limit. The faults, spread over the run: workers SIGKILLed with their
pool children (and started again, as a Deployment does), a Redis SIGKILL and restart from its AOF (fsync
always, so every acknowledged enqueue must survive), and a PostgreSQL outage (server stopped, then
started).

After the load: every acknowledged task must reach a final status (else it is lost), each task body must
have run once, or again only after its earlier run's lease could have expired (bench/soak_verdict.py), and
every finished task must have its row in PostgreSQL with that final status.

It lives in bench/ beside the other measurement harnesses because it is one: a command that runs real
processes for minutes and prints what it measured. tests/integration/test_soak.py runs a short version in
the normal suite and asserts on the same report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pydantic import SecretStr

from bench.soak_stack import MAX_RESULT_BYTES, SoakStack
from bench.soak_verdict import SoakReport, duplicate_runs, format_table, read_runs
from jobqueue.broker.client import Client
from jobqueue.broker.recorder_progress import read_recorder_progress
from jobqueue.errors import JobQueueError, TaskNotFound
from jobqueue.record.settings import RecordSettings
from jobqueue.settings import Settings

QUEUE = "soak"


@dataclass
class Timeline:
    """When each fault happens, in seconds from the start of the load."""

    worker_kills: list[float]
    redis_crash: float
    redis_up: float
    postgres_down: float
    postgres_up: float

    @classmethod
    def for_duration(cls, seconds: float) -> Timeline:
        """Faults spread over the run, apart from each other so each one's effect can be told apart."""
        outage = min(30.0, max(8.0, seconds * 0.1))
        kills = [seconds * f for f in (0.12, 0.28, 0.5, 0.75, 0.88)]
        redis_down = 3.0  # the producer and the API keep going meanwhile: refused, 503, never 500
        return cls(
            kills, seconds * 0.38, seconds * 0.38 + redis_down, seconds * 0.58, seconds * 0.58 + outage
        )


@dataclass
class Load:
    """What the producer sent and what came back."""

    ids: list[str] = field(default_factory=list)
    client: int = 0
    api: int = 0
    refused: int = 0
    http_requests: int = 0
    http_500: int = 0
    hostile: int = 0  # submits with NUL and a lone surrogate in args
    hostile_422: int = 0  # ... answered 422, as they must be
    hostile_other: list[int] = field(default_factory=list)  # what the others got (0: no answer)


class Soak:
    """One soak run over a started stack."""

    def __init__(self, stack: SoakStack, minutes: float, rate: float, seed: int = 0) -> None:
        self.stack = stack
        self.seconds = minutes * 60
        self.rate = rate
        self.report = SoakReport(minutes=minutes)
        self.load = Load()
        self.random = random.Random(seed)
        self.client = Client(Settings(redis_url=SecretStr(stack.redis.url)))
        self.group = RecordSettings().group

    def run(self, drain_seconds: float = 60.0, record_seconds: float = 60.0) -> SoakReport:
        """Load with faults, then wait for the queue to drain and the record to catch up; the report."""
        started = time.monotonic()
        try:
            self._load_with_faults()
            finished = self._drain(drain_seconds)
            self._check_record(finished, record_seconds)
        finally:
            self.client.close()
        self._count_runs()
        report = self.report
        report.submitted_client, report.submitted_api = self.load.client, self.load.api
        report.refused, report.http_requests, report.http_500 = (
            self.load.refused, self.load.http_requests, self.load.http_500,
        )  # fmt: skip
        report.hostile, report.hostile_422 = self.load.hostile, self.load.hostile_422
        report.hostile_other = self.load.hostile_other
        restarts = self.stack.restarts
        report.workers_killed, report.redis_crashes = restarts.workers_killed, restarts.redis_crashes
        report.postgres_outages, report.service_restarts = (
            restarts.postgres_outages,
            restarts.service_restarts,
        )
        report.wall_seconds = time.monotonic() - started
        return report

    def _load_with_faults(self) -> None:
        plan = Timeline.for_duration(self.seconds)
        kills = list(plan.worker_kills)
        crashed = redis_up = pg_down = pg_up = False
        start = time.monotonic()
        next_tick = 0.0
        n = 0
        while (elapsed := time.monotonic() - start) < self.seconds:
            if kills and elapsed >= kills[0]:
                kills.pop(0)
                self.stack.kill_worker(self.random.randrange(len(self.stack.workers)))
            if not crashed and elapsed >= plan.redis_crash:
                crashed = True
                self.stack.crash_redis()
            if crashed and not redis_up and elapsed >= plan.redis_up:
                redis_up = True
                self.stack.restart_redis()
            if not pg_down and elapsed >= plan.postgres_down:
                pg_down = True
                self.stack.stop_postgres()
            if pg_down and not pg_up and elapsed >= plan.postgres_up:
                pg_up = True
                self.stack.start_postgres()
            if elapsed >= next_tick:
                next_tick = elapsed + 1.0
                self.stack.tick()
                self._sample_lag()
            self._submit(n)
            n += 1
            time.sleep(1 / self.rate)
        if crashed and not redis_up:
            self.stack.restart_redis()
        if pg_down and not pg_up:
            self.stack.start_postgres()

    def _submit(self, n: int) -> None:
        kind = n % 50
        if kind == 0:
            self._enqueue("poison_result", [])
        elif kind == 1:
            self._enqueue("poison_error", [], max_retries=0)
        elif kind == 2:
            self._enqueue("oversize", [MAX_RESULT_BYTES + 1], max_retries=0)
        elif n % 20 == 4:
            # A long one: most workers have one running whenever a kill comes, so kills interrupt task
            # bodies (and the re-run rule is exercised, not just queued work recovered).
            self._enqueue("work", [n, 4.0])
        elif kind == 13:
            self._submit_hostile()
        elif n % 10 == 3:
            self._submit_api(n)
        else:
            self._enqueue("work", [n, self.random.uniform(0.0, 0.2)])

    def _enqueue(self, name: str, args: list[Any], max_retries: int | None = None) -> None:
        try:
            handle = self.client.enqueue(name, args, queue=QUEUE, max_retries=max_retries)
        except JobQueueError:
            self.load.refused += 1  # Redis down: not acknowledged, so the producer knows it is not in
            return
        self.load.ids.append(handle.id)
        self.load.client += 1

    def _submit_api(self, n: int) -> None:
        body = {"name": "work", "args": [n, 0.01], "queue": QUEUE}
        status, reply = self._http("POST", "/api/v1/tasks", body)
        if status == 201:
            self.load.ids.append(reply["ids"][0])
            self.load.api += 1
        else:
            self.load.refused += 1
        if self.load.ids:  # a read of an earlier task: the API's other half
            self._http("GET", f"/api/v1/tasks/{self.random.choice(self.load.ids)}", None)

    def _submit_hostile(self) -> None:
        """Input no store accepts, through the REST API: a 422 naming the field, never a 500, never in."""
        body = {"name": "work", "args": ["nul \x00", "surrogate \ud800"], "queue": QUEUE}
        self.load.hostile += 1
        status, _ = self._http("POST", "/api/v1/tasks", body)
        if status == 422:
            self.load.hostile_422 += 1
        else:
            self.load.hostile_other.append(status)

    def _http(self, method: str, path: str, body: object) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.stack.api_url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.stack.api_key}", "Content-Type": "application/json"},
        )  # fmt: skip
        self.load.http_requests += 1
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 and exc.code != 503:
                self.load.http_500 += 1
            return exc.code, None
        except OSError:
            return 0, None  # the API restarting: counted by the stack, not as an answer

    def _sample_lag(self) -> None:
        with contextlib.suppress(JobQueueError):  # Redis may be down right now
            progress = read_recorder_progress(self.client, [QUEUE])
            if progress is not None:
                self.report.max_recorder_lag = max(self.report.max_recorder_lag, progress.lag_seconds)

    def _drain(self, timeout: float) -> dict[str, str]:
        """Final status of each acknowledged task, waiting up to ``timeout`` seconds; the rest are lost."""
        finished: dict[str, str] = {}
        waiting = list(self.load.ids)
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            still: list[str] = []
            for task_id in waiting:
                try:
                    status = self.client.get_task(task_id).status
                except TaskNotFound:
                    status = None
                if status is not None and status.is_terminal:
                    finished[task_id] = status.value
                else:
                    still.append(task_id)
            waiting = still
            self.stack.tick()
            self._sample_lag()
            time.sleep(1.0)
        self.report.lost = len(waiting)
        self.report.done = len(finished)
        for final in finished.values():
            self.report.by_status[final] = self.report.by_status.get(final, 0) + 1
        return finished

    def _check_record(self, finished: dict[str, str], timeout: float) -> None:
        """Wait for every finished task's row in PostgreSQL to show its final status."""
        missing = dict(finished)
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.stack.database_url, autocommit=True) as conn:
            while True:
                rows = conn.execute(
                    "SELECT id, status FROM tasks WHERE id = ANY(%s)", (list(missing),)
                ).fetchall()
                for task_id, status in rows:
                    if missing.get(task_id) == status:
                        del missing[task_id]
                if not missing or time.monotonic() >= deadline:
                    break
                self._sample_lag()
                time.sleep(1.0)
            rejects = conn.execute("SELECT count(*) FROM record_rejects").fetchone()
        self.report.unrecorded = len(missing)
        self.report.recorded = len(finished) - len(missing)
        self.report.parked_rejects = int(rejects[0]) if rejects else 0

    def _count_runs(self) -> None:
        runs = read_runs(self.stack.runs_dir)
        restarts = self.stack.restarts
        self.report.duplicates = duplicate_runs(runs, restarts.killed_groups, restarts.redis_crash_times)
        self.report.reruns_allowed = len(runs) - len({r.task_id for r in runs}) - self.report.duplicates


def run_soak(minutes: float, rate: float = 20.0, keep_files: bool = False) -> tuple[SoakReport, SoakStack]:
    """Start the stack, soak it, stop it; the report and the (stopped) stack, whose logs are kept when
    ``keep_files`` or when a guarantee broke."""
    stack = SoakStack()
    report = None
    try:
        stack.start()
        report = Soak(stack, minutes, rate).run()
    finally:
        stack.stop(keep_files=keep_files or report is None or bool(report.problems()))
    return report, stack


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``make soak``."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "10")))
    parser.add_argument("--rate", type=float, default=20.0, help="tasks submitted per second")
    parser.add_argument("--keep", action="store_true", help="keep the data dir and logs")
    args = parser.parse_args(argv)
    print(f"soak: {args.minutes:g} min at {args.rate:g} tasks/s ...", flush=True)
    report, stack = run_soak(args.minutes, args.rate, args.keep)
    print(format_table(report))
    problems = report.problems()
    if problems or args.keep:
        print(f"logs: {stack.logs}", file=sys.stderr)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
