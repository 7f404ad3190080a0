"""What the recorder costs the hot path: enqueue and processing throughput without and with a
``jobqueue recorder`` process running, on one Redis and one PostgreSQL, in one run.

Starts its own Redis and PostgreSQL (embedded, free 127.0.0.1 ports, PostgreSQL with fsync on) and runs
rounds that alternate without / with the recorder (the machine may be shared: a single pair measures the
neighbours as much as the recorder, so medians of several alternating rounds are compared, with their
spread). Each round reuses the main benchmark's runner (``bench.runner``): a batch enqueue of ``--tasks``
no-op tasks, then a real ``jobqueue worker`` (the tuned setting) processing them all.

In a round with the recorder it also measures how far the recorder fell behind (events not yet recorded,
and the age of the oldest one), how long it took to catch up once the workload stopped, and then checks
the record: the set of stream entry ids equals the set in ``task_event_log`` (every event recorded,
none twice) and every task is in ``tasks`` as SUCCESS. A recorder that only falls behind is not free:
that is why lag and catch-up are part of the result.

The result opens with issue 21's four figures for the record, each against its target (``targets``):
recorder CPU per event (process CPU of the recorder / events it recorded, target <= 25 µs), its share
of Redis command time (INFO commandstats deltas of its commands while the hot path runs at its maximum
rate, <= 5%), the catch-up rate (the workload run with no recorder so the stream fills, then a recorder
started: events per second from its first commit to the last, >= 2x the hot path's maximum event rate)
and lag under sustained maximum load (the worst seconds-behind in the second half of the workload is no
worse than in the first: bounded, not growing).

    python -m bench.recorder_overhead [--tasks 20000] [--rounds 3] [--record niceness=10] [--json out.json]

The four figures are written into docs/benchmarks.md between the ``bench:record`` markers unless
``--no-docs``. (The rounds are bench/recorder_rounds.py; what they add up to, bench/recorder_verdict.py.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench import headlines
from bench.recorder_rounds import CatchUp, Round, Servers, catch_up_round, run_round
from bench.recorder_verdict import DOCS_MARKERS, docs_section, summarize, verdicts
from bench.report import replace_results
from bench.runner import REPO_ROOT, Runner
from bench.summary import directory_for, publish
from jobqueue.embedded.postgres_server import PostgresServer
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.record.migrate import migrate
from jobqueue.record.settings import RecordSettings


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench.recorder_overhead``; exit 1 if the record was incomplete."""
    parser = argparse.ArgumentParser(prog="python -m bench.recorder_overhead", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each kind, alternating")
    parser.add_argument(
        "--record", action="append", default=[], metavar="NAME=VALUE",
        help="a recorder setting, e.g. niceness=10 or linger_ms=500 (JOBQUEUE_RECORD_<NAME>); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--postgres-niceness", type=int, default=0, metavar="N",
        help="renice the PostgreSQL server (and so every backend it forks) by N: on a single machine, "
        "with --record niceness=N, the whole record then yields the CPU to the hot path",
    )  # fmt: skip
    parser.add_argument(
        "--postgres-no-fsync", action="store_true",
        help="diagnostic only (never a production setting): PostgreSQL without fsync, to tell the "
        "record's disk flushes apart from its CPU",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument("--summary-dir", type=Path, default=None, help="default: beside --docs")
    args = parser.parse_args(argv)
    record_env = {}
    for item in args.record:
        name, _, value = item.partition("=")
        record_env[f"JOBQUEUE_RECORD_{name.upper()}"] = value
    RecordSettings.model_validate(
        {k.removeprefix("JOBQUEUE_RECORD_").lower(): v for k, v in record_env.items()}
    )

    base = Path(tempfile.mkdtemp(prefix="jobqueue-recorder-overhead-"))
    os.chmod(base, 0o755)  # PostgreSQL runs as another user when we are root
    redis_server = RedisServer(base / "redis").start()
    pg = PostgresServer(base / "pg", durable=not args.postgres_no_fsync).start()
    rounds: list[Round] = []
    catch_up: list[CatchUp] = []
    try:
        database_url = pg.create_database("bench")
        migrate(database_url)
        runner = Runner(redis_server.url, base, {"main": Path(sys.executable).parent}, args.tasks)
        assert pg.process is not None
        if args.postgres_niceness:
            # Backends are forked by the postmaster and inherit its niceness (root may renice it).
            os.setpriority(os.PRIO_PROCESS, pg.process.pid, args.postgres_niceness)
        servers = Servers(database_url, pg.process.pid)
        run_round(runner, 0, False, servers, record_env, base)  # warm-up (caches, scripts): not kept
        for rep in range(1, args.rounds + 1):
            # Alternate which kind goes first, so a drift in the neighbours' load favours neither.
            order = (False, True) if rep % 2 else (True, False)
            for with_recorder in order:
                r = run_round(runner, rep, with_recorder, servers, record_env, base)
                rounds.append(r)
                print(json.dumps({"round": rep, **asdict(r)}), file=sys.stderr, flush=True)
        # The catch-up rate needs a backlog the recorder did not see grow: pre-filled with it off.
        catch_up = [
            catch_up_round(runner, servers, record_env, base) for _ in range(max(1, args.rounds // 2))
        ]
        for c in catch_up:
            print(json.dumps({"catch_up": asdict(c)}), file=sys.stderr, flush=True)
        summary = summarize(rounds)
        result = {
            "targets": verdicts(summary, catch_up, rounds),
            "tasks_per_round": args.tasks,
            "rounds": args.rounds,
            "recorder_settings": record_env or "defaults",
            "postgres_niceness": args.postgres_niceness,
            "postgres_fsync": not args.postgres_no_fsync,
            "load_average_after": os.getloadavg(),
            **summary,
        }
        print(json.dumps(result, indent=2))
        if not args.no_docs:
            command = "python -m bench.recorder_overhead " + " ".join(
                argv if argv is not None else sys.argv[1:]
            )
            current = args.docs.read_text() if args.docs.exists() else ""
            section = docs_section(result, command)
            args.docs.write_text(replace_results(current, section, DOCS_MARKERS))
            load = "after: " + ", ".join(f"{x:.1f}" for x in result["load_average_after"])
            figures = headlines.recorder_overhead(result["targets"])
            where = directory_for(args.docs, args.summary_dir)
            publish("recorder_overhead", "bench.recorder_overhead", argv, load, figures, where)
        if args.json:
            args.json.write_text(json.dumps({**result, "raw": [asdict(r) for r in rounds]}, indent=2))
    finally:
        pg.stop()
        redis_server.stop()
        shutil.rmtree(base, ignore_errors=True)
    return (
        0
        if all(r.recorded_once for r in rounds if r.recorder) and all(c.recorded_once for c in catch_up)
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
