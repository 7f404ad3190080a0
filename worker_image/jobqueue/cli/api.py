"""Commands that talk to the REST API instead of Redis: ``submit``, ``cancel``, ``queues``, and
``status`` / ``dlq`` when an API URL is given (``--api`` or ``JOBQUEUE_API_URL``).

Going through the API means the shell needs only a URL and a key (no Redis credentials) and gets the same
validation, scopes and errors as any other client. Every command prints JSON; an API error prints the
API's message and field and exits 2 (``main`` handles every JobQueueError that way).
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from jobqueue.errors import ValidationError
from jobqueue.keys import queue_of
from jobqueue.payloads import find_unstorable

if TYPE_CHECKING:  # settings (pydantic) and urllib's HTTP client load when a command runs, not at --help
    from jobqueue.cli.api_client import ApiClient
    from jobqueue.settings import ApiClientSettings


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def json_option(text: str, field: str) -> Any:
    """A JSON option from the command line, refused here (naming the path inside it) when it is not a
    storable payload: bytes of the shell that are not UTF-8 reach Python as lone surrogates."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValidationError(field, f"is not valid JSON ({exc})") from exc
    unstorable = find_unstorable(value, field)
    if unstorable is not None:
        path, reason = unstorable
        raise ValidationError(path, f"{reason}, which cannot be stored")
    return value


def _seg(value: str) -> str:
    """One path segment: a task id or queue name from the shell may not reach another route."""
    return urllib.parse.quote(value, safe="")


def api_url(args: argparse.Namespace, settings: ApiClientSettings) -> str | None:
    """The API URL from --api, else JOBQUEUE_API_URL; None means "talk to Redis directly"."""
    url: str | None = getattr(args, "api", None) or settings.url
    return url


def api_client(args: argparse.Namespace, settings: ApiClientSettings | None = None) -> ApiClient:
    """An ApiClient from --api / --key, falling back to JOBQUEUE_API_URL / JOBQUEUE_API_KEY."""
    if settings is None:
        from jobqueue.settings import ApiClientSettings  # noqa: PLC0415 - see the TYPE_CHECKING import

        settings = ApiClientSettings()
    key = args.key or (settings.key.get_secret_value() if settings.key else None)
    from jobqueue.cli.api_client import ApiClient  # noqa: PLC0415 - see the TYPE_CHECKING imports

    return ApiClient(api_url(args, settings), key, timeout=args.http_timeout)


def _submit(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "name": args.name,
        "args": json_option(args.args, "args"),
        "kwargs": json_option(args.kwargs, "kwargs"),
        "queue": args.queue,
        "priority": args.priority,
        "max_retries": args.max_retries,
        "unique": args.unique,
        "depends_on": args.depends_on,
    }
    for option in ("countdown", "eta", "timeout", "unique_key", "expires"):
        if getattr(args, option) is not None:
            body[option] = getattr(args, option)
    _print(api_client(args).post("/api/v1/tasks", body))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    client = api_client(args)
    for task_id in args.ids:
        _print(
            client.post(f"/api/v1/tasks/{_seg(task_id)}/cancel", {"reason": args.reason, "force": args.force})
        )
    return 0


def _queues(args: argparse.Namespace) -> int:
    client = api_client(args)
    if args.queue:
        _print(client.get(f"/api/v1/queues/{_seg(args.queue)}"))
        return 0
    # Every queue: the listing is paged (in name order; a short page is the last one).
    queues: list[Any] = []
    while True:
        page = client.get(
            "/api/v1/queues", limit=_QUEUE_PAGE, **({"after": queues[-1]["name"]} if queues else {})
        )
        queues += page
        if len(page) < _QUEUE_PAGE:
            break
    _print(queues)
    return 0


_QUEUE_PAGE = 1000


def status_via_api(args: argparse.Namespace, settings: ApiClientSettings) -> int:
    """``jobqueue status ID --api URL``: the live task, or its recorded history with --history."""
    path = f"/api/v1/tasks/{_seg(args.task_id)}" + ("/history" if args.history else "")
    _print(api_client(args, settings).get(path))
    return 0


def dlq_via_api(args: argparse.Namespace, settings: ApiClientSettings) -> int:
    """``jobqueue dlq ACTION --api URL``."""
    client = api_client(args, settings)
    base = f"/api/v1/queues/{_seg(args.queue)}/dead-letters"
    if args.action == "list":
        _print(client.get(base, limit=args.limit))
    elif args.action == "stats":
        _print(client.get(f"{base}/stats"))
    elif args.action == "replay":
        for task_id in args.ids:
            # The task id carries its queue, so replay works whatever --queue says.
            path = f"/api/v1/queues/{_seg(queue_of(task_id))}/dead-letters/{_seg(task_id)}/replay"
            _print(client.post(path, {"reset_retries": args.reset}))
    elif args.action == "purge":
        _print(client.delete(base))
    return 0


def add_api_options(parser: argparse.ArgumentParser) -> None:
    """--api, --key and --http-timeout, shared by every command that can use the API."""
    parser.add_argument(
        "--api", default=None, metavar="URL", help="REST API base URL (default $JOBQUEUE_API_URL)"
    )
    parser.add_argument("--key", default=None, help="API key (default $JOBQUEUE_API_KEY)")
    parser.add_argument("--http-timeout", type=float, default=30.0, help="seconds per API request")


def add_commands(sub: Any) -> None:
    """Add ``submit``, ``cancel`` and ``queues`` to the ``jobqueue`` parser."""
    s = sub.add_parser("submit", help="submit a task through the REST API")
    s.add_argument("name")
    s.add_argument("--args", default="[]", help="JSON array")
    s.add_argument("--kwargs", default="{}", help="JSON object")
    s.add_argument("--queue", default="default")
    s.add_argument("--priority", default="medium", choices=["high", "medium", "low"])
    s.add_argument("--countdown", type=float, default=None, help="seconds before it may start")
    s.add_argument("--eta", default=None, help="ISO 8601 time before which it may not start")
    s.add_argument(
        "--max-retries", type=int, default=None, help="retries after a failure (default: the queue's default)"
    )
    s.add_argument("--timeout", type=float, default=None, help="hard time limit in seconds")
    s.add_argument("--expires", type=float, default=None, help="seconds: not started by then, never run")
    s.add_argument("--unique", action="store_true", help="deduplicate on name + args")
    s.add_argument("--unique-key", default=None, help="deduplicate on this key instead")
    s.add_argument("--depends-on", action="append", default=[], metavar="TASK_ID", help="parent (repeatable)")
    add_api_options(s)
    s.set_defaults(func=_submit)

    c = sub.add_parser("cancel", help="cancel tasks through the REST API")
    c.add_argument("ids", nargs="+", metavar="TASK_ID")
    c.add_argument("--reason", default="user_requested")
    c.add_argument("--force", action="store_true", help="stop a running task now instead of asking it")
    add_api_options(c)
    c.set_defaults(func=_cancel)

    q = sub.add_parser("queues", help="queues with depth per priority, in-flight and dead letters (API)")
    q.add_argument("queue", nargs="?", default=None, help="one queue (default: all)")
    add_api_options(q)
    q.set_defaults(func=_queues)
