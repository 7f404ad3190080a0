"""Cost as the system grows: ``python -m bench.scale_costs``.

Three populations, each at 10x steps on a dedicated ``redis-server``, each reported as cost per operation
so a step that grows with the population shows as a growing number rather than a flat one:

- **workers** (10, 100, 1,000 registered): one worker's heartbeat bookkeeping (the pipeline
  ``heartbeat_once`` sends: its hash, its expiry, the registry zset, its control hash) and
  ``GET /api/v1/workers`` (API app in-process through Starlette's TestClient), total and per worker. A
  further row adds as many registry entries of workers that died without deregistering (SIGKILL, OOM,
  a node lost) a day ago: the registry forgets them, so the listing must not pay for them.
- **schedules** (100, 1,000, 10,000 registered, none due): the scheduler's firing step
  (``fire_due_schedules``) with nothing due, and with 10 schedules made due, per fired schedule.
- **delayed tasks** (10,000, 100,000, 1,000,000 not yet due in one queue, written by a Lua loop): one
  ``promote.lua`` call with nothing due, and promotion of 1,000 due tasks, per promoted task.

    python -m bench.scale_costs
    python -m bench.scale_costs --workers 10,100 --schedules 10,100 --delayed 1000,10000 --repeats 3 --no-docs

The tables are written into docs/benchmarks.md between the ``bench:scale`` markers unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from bench.report import command_line, markdown, replace_results
from bench.runner import REPO_ROOT
from jobqueue import Client, Settings
from jobqueue.broker.promotion import build_promote, parse_promote
from jobqueue.broker.redis_io import run_scripts
from jobqueue.broker.schedule_scripts import ScheduleOp
from jobqueue.broker.scripts import ScriptCall
from jobqueue.broker.worker_registry import WORKER_REGISTRY_RETENTION_SECONDS, publish_worker_record
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.keys import GlobalKeys, QueueKeys
from jobqueue.schedules.cron import next_fire
from jobqueue.schedules.model import make_schedule, to_ms
from jobqueue.schedules.registry import fire_due_schedules
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

HEADERS = {"Authorization": "Bearer bench"}
DOCS_MARKERS = ("<!-- bench:scale:start -->", "<!-- bench:scale:end -->")
QUEUE = "scale"
DUE_SCHEDULES = 10
DUE_TASKS = 1000

# Far-future delayed entries, 100,000 per call (a dedicated server: blocking it briefly harms nobody).
# Only the zset entries: promotion never reads the hash of a task that is not due.
FILL_DELAYED = """
local from, to, due = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = from, to do redis.call('ZADD', KEYS[1], due + i, 'far' .. i) end
return to
"""


def _median_us(repeats: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def _heartbeat(client: Client, worker_id: str) -> None:
    """What ``heartbeat_once`` sends for a worker's own record (its leases are renewed per queue apart)."""
    info: dict[str, str | int | float] = {"status": "IDLE", "pid": 1, "heartbeat_at": time.time()}
    publish_worker_record(client.redis, client.global_keys, worker_id, info, 60)


def _register_workers(client: Client, have: int, total: int) -> None:
    keys = client.global_keys
    now_ms = int(time.time() * 1000)
    pipe = client.redis.pipeline(transaction=False)
    for i in range(have, total):
        worker_id = f"w{i:06d}"
        info = {"status": "IDLE", "host": "bench", "pid": i, "queues": QUEUE, "concurrency": 4}
        info |= {
            "in_flight": "[]",
            "processed": 0,
            "started_at": now_ms / 1000,
            "heartbeat_at": now_ms / 1000,
        }
        pipe.hset(keys.worker(worker_id), mapping=info)
        pipe.expire(keys.worker(worker_id), 3600)
        pipe.zadd(keys.workers, {worker_id: now_ms})
    pipe.execute()


def _get(api: TestClient, path: str) -> Any:
    r = api.get(path, headers=HEADERS)
    if r.status_code != 200:
        raise SystemExit(f"{path}: {r.status_code} {r.text[:300]}")
    return r.json()


def measure_workers(client: Client, api: TestClient, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """Heartbeat and listing per registered worker at each size, then with as many long-dead entries."""
    rows = []
    have = 0
    for n in sizes:
        _register_workers(client, have, n)
        have = n
        beat = _median_us(repeats * 20, lambda: _heartbeat(client, "w000000"))
        listed = len(_get(api, "/api/v1/workers"))
        listing = _median_us(repeats, lambda: _get(api, "/api/v1/workers"))
        rows.append(
            {"workers": f"{n:,}", "beat": beat, "list_ms": listing / 1000, "per": listing / n, "n": listed}
        )
    # Workers that were SIGKILLed a day ago: a registry entry each, their hashes long expired. Listed
    # once as the registry held them before it had a horizon, then after one heartbeat pruned them.
    dead_ms = int(time.time() * 1000) - (WORKER_REGISTRY_RETENTION_SECONDS + 3600) * 1000
    client.redis.zadd(client.global_keys.workers, {f"dead{i:06d}": dead_ms for i in range(have)})
    for label, prune in (("kept", False), ("pruned by a heartbeat", True)):
        if prune:
            _heartbeat(client, "w000000")
        listing = _median_us(repeats, lambda: _get(api, "/api/v1/workers"))
        rows.append(
            {"workers": f"{have:,} + {have:,} dead a day ago, {label}", "beat": None,
             "list_ms": listing / 1000, "per": listing / have,
             "n": client.redis.zcard(client.global_keys.workers)}
        )  # fmt: skip
    return rows


def _put_schedules(client: Client, names: list[str]) -> None:
    """Yearly schedules (never due on their own during the run) through schedule_update.lua, the script
    ``ScheduleRegistry.register`` runs, pipelined: register's own check of the cron's shortest interval
    costs 10-50 ms of croniter per schedule, which is registration's cost, not the tick's."""
    base = make_schedule("s", cron="0 0 1 1 *", task="noop", queue=QUEUE)
    next_ms = to_ms(next_fire(base.cron_spec, dt.datetime.now(dt.UTC)))
    keys = client.global_keys
    for start in range(0, len(names), 1000):
        calls = [
            ScriptCall(
                "schedule_update",
                (keys.schedules, keys.schedules_due, keys.schedule_state(name)),
                (ScheduleOp.PUT.value, name, dataclasses.replace(base, name=name).to_json(), next_ms, ""),
            )
            for name in names[start : start + 1000]
        ]
        run_scripts(client.redis, calls)


def measure_schedules(client: Client, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """The firing step with nothing due and with DUE_SCHEDULES due, at each number of schedules."""
    due_key = GlobalKeys(client.settings.key_prefix).schedules_due
    rows = []
    have = 0
    for n in sizes:
        _put_schedules(client, [f"s{i:06d}" for i in range(have, n)])
        have = n
        idle = _median_us(repeats, lambda: fire_due_schedules(client, "bench"))
        fired = []
        # Made due: fresh schedules (a fire time is claimed once) whose due score is the fire time that
        # has just passed for a yearly cron, this year's 1 January: exactly one fire each.
        year_start_ms = int(dt.datetime(dt.datetime.now(dt.UTC).year, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
        for rep in range(repeats):
            hot = [f"hot{n}-{rep}-{i}" for i in range(DUE_SCHEDULES)]
            _put_schedules(client, hot)
            client.redis.zadd(due_key, dict.fromkeys(hot, year_start_ms))
            start = time.perf_counter()
            report = fire_due_schedules(client, "bench")
            fired.append((time.perf_counter() - start) * 1e6 / max(1, report.fired))
            if report.fired != DUE_SCHEDULES:
                raise SystemExit(f"{report.fired} of {DUE_SCHEDULES} due schedules fired")
        rows.append({"schedules": n, "idle": idle, "per_fire": statistics.median(fired)})
    return rows


def _add_due_tasks(client: Client, keys: QueueKeys, count: int) -> None:
    past_ms = int(time.time() * 1000) - 1000
    pipe = client.redis.pipeline(transaction=False)
    for i in range(count):
        task_id = f"due{i:05d}"
        pipe.hset(keys.task(task_id), mapping={"status": "DELAYED", "priority": "medium"})
        pipe.zadd(keys.delayed, {task_id: past_ms})
    pipe.execute()


def measure_delayed(client: Client, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """One promote call with nothing due, and promotion of DUE_TASKS due tasks, per promoted task."""
    keys = QueueKeys(client.settings.key_prefix, QUEUE)
    fill = client.redis.register_script(FILL_DELAYED)
    far_ms = int(time.time() * 1000) + 365 * 86400 * 1000
    call = build_promote(client.settings, QUEUE)
    rows = []
    have = 0
    for n in sizes:
        for start in range(have, n, 100_000):
            fill(keys=[keys.delayed], args=[start, min(n, start + 100_000) - 1, far_ms])
        have = n
        idle = _median_us(repeats * 20, lambda: run_scripts(client.redis, [call]))
        per_task = []
        for _ in range(repeats):
            _add_due_tasks(client, keys, DUE_TASKS)
            promoted = 0
            start_t = time.perf_counter()
            while promoted < DUE_TASKS:
                [reply] = run_scripts(client.redis, [call])
                step = parse_promote(reply).promoted
                if step == 0:
                    raise SystemExit(f"only {promoted} of {DUE_TASKS} due tasks promoted")
                promoted += step
            per_task.append((time.perf_counter() - start_t) * 1e6 / promoted)
            for ready in keys.ready_all:
                client.redis.delete(ready)
        rows.append(
            {
                "delayed": client.redis.zcard(keys.delayed),
                "idle": idle,
                "per_task": statistics.median(per_task),
            }
        )
    return rows


def _growth(rows: list[dict[str, Any]], field: str) -> list[str]:
    out, previous = [], None
    for row in rows:
        out.append(f"{row[field] / previous:.2f}x" if previous else "-")
        previous = row[field]
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    return "\n" + markdown([header, *rows]) + "\n"


def _sizes(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n]


def main(argv: list[str] | None = None) -> int:
    """Measure each population at each size; print three markdown tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale_costs")
    parser.add_argument("--workers", default="10,100,1000")
    parser.add_argument("--schedules", default="100,1000,10000")
    parser.add_argument("--delayed", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-scale-costs-") as tmp:
        server = RedisServer(Path(tmp)).start()
        settings = Settings(redis_url=SecretStr(server.url), key_prefix="sc")
        client = Client(settings)
        try:
            app = create_app(settings, ApiSettings(keys=SecretStr("bench:admin")))
            with TestClient(app) as api:
                workers = measure_workers(client, api, _sizes(args.workers), args.repeats)
            schedules = measure_schedules(client, _sizes(args.schedules), args.repeats)
            delayed = measure_delayed(client, _sizes(args.delayed), args.repeats)
        finally:
            client.close()
            server.stop()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = command_line("bench.scale_costs", argv)
    section = (
        f"Measured {stamp} with `{command}`, load average {os.getloadavg()[0]:.1f}, medians of "
        f"{args.repeats} (heartbeats and empty promote calls: of 20x as many), one dedicated redis-server, "
        "the API in-process.\n"
    )
    section += _table(
        ["registered workers", "one heartbeat µs", "GET /api/v1/workers ms", "listing µs per worker",
         "listed (registry left)"],
        [[r["workers"], "-" if r["beat"] is None else f"{r['beat']:.0f}", f"{r['list_ms']:.1f}",
          f"{r['per']:.0f}", f"{r['n']:,}"] for r in workers],
    )  # fmt: skip
    section += _table(
        ["schedules", "firing step, none due µs", "x vs previous",
         f"per fired schedule µs ({DUE_SCHEDULES} due)", "x vs previous"],
        [[f"{r['schedules']:,}", f"{r['idle']:.0f}", g_idle, f"{r['per_fire']:.0f}", g_fire]
         for r, g_idle, g_fire in zip(schedules, _growth(schedules, "idle"), _growth(schedules, "per_fire"),
                                      strict=True)],
    )  # fmt: skip
    section += _table(
        ["delayed tasks", "promote call, none due µs", "x vs previous",
         f"per promoted task µs ({DUE_TASKS:,} due)", "x vs previous"],
        [[f"{r['delayed']:,}", f"{r['idle']:.0f}", g_idle, f"{r['per_task']:.1f}", g_task]
         for r, g_idle, g_task in zip(delayed, _growth(delayed, "idle"), _growth(delayed, "per_task"),
                                      strict=True)],
    )  # fmt: skip
    print("\n" + section)
    if not args.no_docs:
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, section, DOCS_MARKERS))
        print(f"wrote {args.docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
