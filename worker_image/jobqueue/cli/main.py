"""The ``jobqueue`` command line: the parser of every command and ``main``, which runs one.

The scheduler, api, migrate, recorder, enqueue, status and dlq commands run from here; ``worker`` is
worker.py and ``up`` (the local stack) up.py; submit, cancel and queues talk to the REST API (api.py);
the flow-control, pool and health commands have their own modules too."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from jobqueue.cli.api import add_api_options, api_url, dlq_via_api, json_option, status_via_api
from jobqueue.cli.api import add_commands as add_api_commands
from jobqueue.cli.flow_control import add_commands as add_flow_commands
from jobqueue.cli.health import add_commands as add_health_commands
from jobqueue.cli.pools import add_commands as add_pool_commands
from jobqueue.cli.up import add_command as add_up_command
from jobqueue.cli.worker import add_command as add_worker_command
from jobqueue.errors import JobQueueError, ValidationError
from jobqueue.log_config import LOG_FORMATS, configure_logging

# Each command imports what it runs when it runs (the function-local imports below): `jobqueue --help`
# or `jobqueue status --api` must not pay for the Redis client, pydantic settings or the worker, and the
# worker's cold start is its import time (tests/unit/test_import_cost.py, docs/benchmarks.md).
if TYPE_CHECKING:
    from jobqueue.app import App


def _scheduler(args: argparse.Namespace) -> int:
    from jobqueue.app import load_app  # noqa: PLC0415
    from jobqueue.broker.client import Client  # noqa: PLC0415
    from jobqueue.services.scheduler import Scheduler  # noqa: PLC0415
    from jobqueue.settings import Settings  # noqa: PLC0415

    # --app: the app's @app.periodic schedules are synced at start (jobqueue/schedules/code.py).
    code_schedules = load_app(args.app).periodic_schedules if args.app else None
    scheduler = Scheduler(Client(Settings()), interval_seconds=args.interval, code_schedules=code_schedules)

    def handler(signum: int, frame: FrameType | None) -> None:
        scheduler.stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    scheduler.run()
    return 0


def _api(args: argparse.Namespace) -> int:
    # Imported here, not at the top: the api extra (FastAPI, uvicorn) is optional in the worker image.
    # jobqueue_api.serve is the API package's one entry for the CLI (see the contracts in pyproject.toml).
    from jobqueue.settings import Settings  # noqa: PLC0415
    from jobqueue_api import serve  # noqa: PLC0415

    serve(Settings(), host=args.host, port=args.port)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from jobqueue.record.maintenance import run_migrate  # noqa: PLC0415 - needs the record extra
    from jobqueue.settings import Settings  # noqa: PLC0415

    applied = run_migrate(Settings())
    print(f"applied migrations: {applied}" if applied else "database is up to date")
    return 0


def _recorder(args: argparse.Namespace) -> int:
    from jobqueue.record.maintenance import run_recorder  # noqa: PLC0415 - needs the record extra
    from jobqueue.record.settings import RecordSettings  # noqa: PLC0415
    from jobqueue.settings import Settings  # noqa: PLC0415

    return run_recorder(Settings(), RecordSettings(), consumer=args.consumer)


def _client(args: argparse.Namespace) -> App:
    from jobqueue.app import App, load_app  # noqa: PLC0415

    return load_app(args.app) if getattr(args, "app", None) else App()


def _enqueue(args: argparse.Namespace) -> int:
    app = _client(args)
    handle = app.client.enqueue(
        args.name,
        json_option(args.args, "args"),
        json_option(args.kwargs, "kwargs"),
        queue=args.queue,
        priority=args.priority,
        countdown=args.countdown,
        max_retries=args.max_retries,
        timeout=args.timeout,
        unique=args.unique,
        unique_key=args.unique_key,
        unique_ttl=args.unique_ttl,
        unique_rerun=args.unique_rerun,
        depends_on=args.depends_on or None,
        expires=args.expires,
    )
    print(handle.id)
    if args.wait is not None:
        print(json.dumps(handle.result(timeout=args.wait)))
    return 0


def _status(args: argparse.Namespace) -> int:
    from jobqueue.settings import ApiClientSettings  # noqa: PLC0415

    api_settings = ApiClientSettings()
    if api_url(args, api_settings):
        return status_via_api(args, api_settings)
    if args.history:
        raise ValidationError("history", "needs the REST API (--api URL or JOBQUEUE_API_URL)")
    print(json.dumps(_client(args).client.get_task(args.task_id).to_json(), indent=2))
    return 0


def _dlq(args: argparse.Namespace) -> int:
    from jobqueue.settings import ApiClientSettings  # noqa: PLC0415

    api_settings = ApiClientSettings()
    if api_url(args, api_settings):
        return dlq_via_api(args, api_settings)
    client = _client(args).client
    if args.action == "list":
        for record in client.list_dead_letters(args.queue, limit=args.limit):
            print(f"{record.id}  {record.name}  {record.dead_letter_reason}  {record.error}")
    elif args.action == "stats":
        stats = client.dead_letter_stats(args.queue)
        print(json.dumps({"total": stats.total, "by_task": stats.by_task, "by_reason": stats.by_reason}))
    elif args.action == "replay":
        for task_id in args.ids:
            client.replay_dead_letter(task_id, reset_retries=args.reset)
            print(f"replayed {task_id}")
    elif args.action == "purge":
        print(f"purged {client.purge_dead_letters(args.queue)}")
    return 0


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked (importlib.metadata is slow to
    import, and every command, the worker's start too, builds this parser)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib import metadata  # noqa: PLC0415

        print(f"{parser.prog} {metadata.version('jobqueue')}")  # on stdout, as argparse's own action
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="jobqueue", description="jobqueue: a distributed job queue")
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="auto",
        help="auto (default): JSON lines unless stderr is a terminal; text; json",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    add_worker_command(sub)

    s = sub.add_parser("scheduler", help="recover expired leases and promote delayed tasks")
    s.add_argument("--interval", type=float, default=1.0)
    s.add_argument("--app", default=None, help="module:attribute of an App (syncs its @app.periodic)")
    s.set_defaults(func=_scheduler)

    a = sub.add_parser("api", help="serve the REST API (JOBQUEUE_API_KEYS, JOBQUEUE_API_HOST/PORT)")
    a.add_argument("--host", default=None)
    a.add_argument("--port", type=int, default=None)
    a.set_defaults(func=_api)

    m = sub.add_parser("migrate", help="apply pending PostgreSQL migrations (JOBQUEUE_DATABASE_URL)")
    m.set_defaults(func=_migrate)

    r = sub.add_parser("recorder", help="record the task event streams into PostgreSQL")
    r.add_argument("--consumer", default=None, help="consumer name (defaults to $POD_NAME, else host-pid)")
    r.set_defaults(func=_recorder)

    add_up_command(sub)

    e = sub.add_parser("enqueue", help="enqueue a task by name")
    e.add_argument("name")
    e.add_argument("--args", default="[]", help="JSON array")
    e.add_argument("--kwargs", default="{}", help="JSON object")
    e.add_argument("--queue", default="default")
    e.add_argument("--priority", default="medium")
    e.add_argument("--countdown", type=float, default=None)
    e.add_argument(
        "--max-retries", type=int, default=None, help="retries after a failure (default: the queue's default)"
    )
    e.add_argument("--timeout", type=float, default=None)
    e.add_argument("--expires", type=float, default=None, help="seconds: not started by then, never run")
    e.add_argument("--wait", type=float, default=None, help="wait up to N seconds and print the result")
    e.add_argument("--unique", action="store_true", help="deduplicate on name + args (docs/deduplication.md)")
    e.add_argument("--unique-key", default=None, help="deduplicate on this key instead")
    e.add_argument("--unique-ttl", type=int, default=None, help="seconds the dedup key lives (default 24 h)")
    e.add_argument("--unique-rerun", action="store_true", help="allow a new run once the earlier completed")
    e.add_argument("--depends-on", action="append", default=[], metavar="TASK_ID", help="parent (repeatable)")
    e.set_defaults(func=_enqueue)

    st = sub.add_parser("status", help="show a task")
    st.add_argument("task_id")
    st.add_argument("--history", action="store_true", help="every recorded transition (API with a record)")
    add_api_options(st)
    st.set_defaults(func=_status)

    d = sub.add_parser("dlq", help="dead letter queue: list, stats, replay, purge")
    d.add_argument("action", choices=["list", "stats", "replay", "purge"])
    d.add_argument("--queue", default="default")
    d.add_argument("--limit", type=int, default=50)
    d.add_argument("--reset", action="store_true", help="replay with retry counters reset")
    d.add_argument("ids", nargs="*")
    add_api_options(d)
    d.set_defaults(func=_dlq)

    add_flow_commands(sub)
    add_api_commands(sub)
    add_pool_commands(sub)
    add_health_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jobqueue`` command."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        return int(args.func(args))
    except JobQueueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # pydantic's ValidationError is one
        # A bad JOBQUEUE_* value (environment or .env file): one line per field, not a traceback.
        # pydantic is loaded by then if it raised: importing it here costs nothing.
        import pydantic  # noqa: PLC0415

        if not isinstance(exc, pydantic.ValidationError):
            raise
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or exc.title
            print(f"error: setting {field}: {error['msg']}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
