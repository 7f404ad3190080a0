"""``jobqueue up``: the whole system on this machine, for your app (``--app``) or the built-in demo.

Everything the command line says is checked here, before anything starts: a bad ``--app`` (no import, no
App, an App without tasks) or option is one line on stderr and exit code 2, with no server started and
no data directory created. Then services/local_stack.py runs the stack.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jobqueue.errors import ConfigurationError, ValidationError
from jobqueue.keys import validate_queue_name

if TYPE_CHECKING:  # imported when `up` runs: `jobqueue --help` builds this parser without them
    from jobqueue.services.served_app import ServedApp


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``jobqueue up``."""
    u = sub.add_parser("up", help="run the whole system locally on an embedded Redis and PostgreSQL")
    u.add_argument("--app", default=None, help="module:attribute of your App (default: the built-in demo)")
    u.add_argument(
        "--queues",
        default=None,
        help="comma-separated queues to serve (default: every queue the app's tasks use)",
    )
    u.add_argument("--data-dir", default=".jobqueue")
    u.add_argument("--redis-port", type=int, default=6390, help="0 picks a free port")
    u.add_argument("--api-port", type=int, default=8000)
    u.add_argument(
        "--workers", "--min-workers", dest="workers", type=int, default=1, help="minimum worker processes"
    )
    u.add_argument("--max-workers", type=int, default=4, help="autoscaling maximum")
    u.add_argument("--concurrency", type=int, default=2, help="slots per worker process")
    u.add_argument(
        "--demo-rate", type=float, default=5.0, help="demo tasks per second (0 = none; demo app only)"
    )
    u.add_argument("--no-demo", action="store_true", help="no demo producer (implied by --app)")
    u.add_argument("--reload", action="store_true", help="restart the workers when the app's source changes")
    u.add_argument("--duration", type=float, default=None, help="stop after N seconds (default: Ctrl-C)")
    u.set_defaults(func=run_up)


def _check_counts(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise ValidationError("min-workers", "must be >= 1")
    if args.max_workers < args.workers:
        raise ValidationError("max-workers", f"must be >= --min-workers ({args.workers})")
    if args.concurrency < 1:
        raise ValidationError("concurrency", "must be >= 1")


def _queues(text: str) -> tuple[str, ...]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValidationError("queues", "names no queue")
    try:
        return tuple(dict.fromkeys(validate_queue_name(name) for name in names))
    except ValidationError as exc:
        raise ValidationError("queues", exc.message) from exc


def source_root(module_name: str) -> Path:
    """The folder holding the app's source: its top-level package, or the folder of a lone module."""
    top = importlib.import_module(module_name.partition(".")[0])
    location = getattr(top, "__file__", None)
    if not location:
        raise ConfigurationError(f"--reload: {module_name!r} has no source file to watch")
    return Path(location).resolve().parent


def resolve_served_app(args: argparse.Namespace) -> ServedApp:
    """Check every option and import the app; ConfigurationError / ValidationError name what is wrong."""
    from jobqueue.app import load_app  # noqa: PLC0415 - see the TYPE_CHECKING imports
    from jobqueue.services.served_app import DEMO_APP, ServedApp, example_request  # noqa: PLC0415

    _check_counts(args)
    spec = args.app or DEMO_APP
    # The `jobqueue` script does not put the current directory on sys.path as `python -m` does, so a
    # project's own `tasks.py` would not import; workers are started with `python -m` from here too.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    app = load_app(spec)
    if not app.registry:
        raise ConfigurationError(f"{spec!r} registers no task: there is nothing for the workers to run")
    queues = _queues(args.queues) if args.queues is not None else tuple(app.task_queues())
    return ServedApp(
        app_spec=spec,
        queues=queues,
        task_names=tuple(sorted(app.registry)),
        demo=args.app is None and not args.no_demo and args.demo_rate > 0,
        watch_root=source_root(spec.partition(":")[0]) if args.reload else None,
        example_request=example_request({name: task.options.queue for name, task in app.registry.items()}),
    )


def run_up(args: argparse.Namespace) -> int:
    """The ``up`` command: validate, say what is served, run the local stack."""
    served = resolve_served_app(args)
    # Imported here: the stack needs the record extra (psycopg), which `jobqueue worker` does not.
    from jobqueue.services.local_stack import run_local_stack  # noqa: PLC0415

    for line in served.describe():
        print(line, flush=True)
    return run_local_stack(args, served)
