"""``jobqueue queue ...`` and ``jobqueue schedule ...``: flow control and schedules from the shell.

Kept apart from cli.py so the command tree there stays small; cli.py only calls ``add_commands``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import TYPE_CHECKING, Any

from jobqueue.retry import BACKOFF_NAMES

if TYPE_CHECKING:
    from jobqueue.app import App


def _app() -> App:
    from jobqueue.app import App  # noqa: PLC0415 - imported when a command runs, not at --help

    return App()


def _print(value: Any) -> None:
    print(json.dumps(value, default=str, indent=2))


def _queue(args: argparse.Namespace) -> int:
    admin = _app().queues
    q = args.queue
    if args.action == "pause":
        admin.pause(q)
    elif args.action == "resume":
        admin.resume(q)
    elif args.action == "rate-limit" and args.level:
        # One priority level's own limit, beside the queue's (a start counts against both).
        if args.off:
            admin.remove_priority_rate_limit(q, args.level)
        elif args.limit is not None:
            admin.set_priority_rate_limit(
                q, args.level, limit=args.limit, period=args.period, burst=args.burst
            )
    elif args.action == "rate-limit":
        if args.off:
            admin.remove_rate_limit(q)
        elif args.reset:
            admin.reset_rate_limit(q)
        elif args.limit is not None:
            admin.set_rate_limit(q, limit=args.limit, period=args.period, burst=args.burst)
        _print(dataclasses.asdict(admin.rate_limit_stats(q)))
        return 0
    elif args.action == "max-in-flight":
        admin.set_max_in_flight(q, args.value)
    elif args.action == "priority":
        weights = [int(w) for w in args.weights.split(":")] if args.weights else None
        admin.set_priority_policy(q, args.policy, weights)
    elif args.action == "retries":
        if args.off:
            admin.remove_retry_defaults(q)
        elif args.max_retries is not None:
            admin.set_retry_defaults(
                q, max_retries=args.max_retries, backoff=args.backoff, base_seconds=args.base,
                max_seconds=args.max_delay, jitter=not args.no_jitter,
            )  # fmt: skip
    elif args.action == "max-lost-leases":
        admin.set_max_lost_leases(q, args.value)
    _print(dataclasses.asdict(admin.get_config(q)))
    return 0


def _schedule(args: argparse.Namespace) -> int:
    registry = _app().schedules
    if args.action == "list":
        _print([dataclasses.asdict(info) for info in registry.list()])
        return 0
    if args.action == "register":
        info = registry.register(
            args.name, cron=args.cron, task=args.task, timezone=args.timezone, args=json.loads(args.args),
            kwargs=json.loads(args.kwargs), queue=args.queue, priority=args.priority,
            concurrency_policy=args.concurrency_policy, starting_deadline_seconds=args.starting_deadline,
        )  # fmt: skip
        _print(dataclasses.asdict(info))
        return 0
    getattr(registry, args.action)(args.name)
    if args.action != "delete":
        _print(dataclasses.asdict(registry.get(args.name)))
    return 0


def add_commands(sub: Any) -> None:
    """Add the ``queue`` and ``schedule`` sub-commands to the ``jobqueue`` parser."""
    actions = [
        "show", "pause", "resume", "rate-limit", "max-in-flight", "priority", "retries", "max-lost-leases"
    ]  # fmt: skip
    q = sub.add_parser("queue", help="queue configuration: " + ", ".join(actions))
    q.add_argument("action", choices=actions)
    q.add_argument("queue")
    q.add_argument("--limit", type=int, default=None, help="rate-limit: tasks per --period")
    q.add_argument("--period", type=float, default=1.0, help="rate-limit: seconds (default 1)")
    q.add_argument("--burst", type=int, default=1)
    q.add_argument(
        "--level", choices=["high", "medium", "low"], default=None,
        help="rate-limit: set (or with --off remove) this priority level's own limit instead of the queue's",
    )  # fmt: skip
    q.add_argument("--reset", action="store_true", help="rate-limit: forget the counted starts")
    q.add_argument("--off", action="store_true", help="rate-limit / retries: remove the setting")
    q.add_argument(
        "--value", type=int, default=None,
        help="max-in-flight: the cap (0 = none); max-lost-leases: the threshold (absent = process default)",
    )  # fmt: skip
    q.add_argument("--max-retries", type=int, default=None, help="retries: the queue's default max retries")
    q.add_argument("--backoff", choices=BACKOFF_NAMES, default="exponential")
    q.add_argument("--base", type=float, default=1.0, help="retries: first delay in seconds")
    q.add_argument("--max-delay", type=float, default=300.0, help="retries: delay cap in seconds")
    q.add_argument("--no-jitter", action="store_true", help="retries: exact delays")
    q.add_argument("--policy", choices=["strict", "weighted"], default="strict")
    q.add_argument("--weights", default=None, help="priority: high:medium:low, e.g. 6:3:1")
    q.set_defaults(func=_queue)

    s = sub.add_parser("schedule", help="recurring schedules: list, register, pause, resume, delete")
    s.add_argument("action", choices=["list", "register", "pause", "resume", "delete"])
    s.add_argument("name", nargs="?", default="")
    s.add_argument("--cron", default="@daily")
    s.add_argument("--task", default="")
    s.add_argument("--timezone", default="UTC")
    s.add_argument("--args", default="[]", help="JSON array")
    s.add_argument("--kwargs", default="{}", help="JSON object")
    s.add_argument("--queue", default="default")
    s.add_argument("--priority", default="medium")
    s.add_argument("--concurrency-policy", default="Allow", choices=["Allow", "Forbid", "Replace"])
    s.add_argument("--starting-deadline", type=float, default=None, help="seconds")
    s.set_defaults(func=_schedule)
