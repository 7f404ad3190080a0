"""``jobqueue pools list|show|create|scale|autoscale|delete|events``: worker pools through the REST API
(the same calls on a cluster and under ``jobqueue up``). Tables for people, ``--json`` for scripts; an API
error prints its message and field and exits 2 like every other API command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import urllib.parse
from collections.abc import Sequence
from typing import Any

from jobqueue.cli.api import add_api_options, api_client

BASE = "/api/v1/worker-pools"


def _seg(value: str) -> str:
    # A name from the shell stays one path segment ("a/../b" cannot reach another route).
    return urllib.parse.quote(value, safe="")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns wide enough for their longest cell (pure)."""
    cells = [[str(h) for h in headers], *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _replicas(pool: dict[str, Any]) -> str:
    status = pool.get("status") or {}
    auto = pool.get("autoscaling") or {}
    desired = status.get("desired_replicas")
    wanted = (
        f"auto {auto.get('min_replicas')}..{auto.get('max_replicas')}" if auto.get("enabled") else desired
    )
    return f"{status.get('ready_replicas', 0)}/{status.get('current_replicas', 0)} ({wanted})"


def pools_table(answer: dict[str, Any]) -> str:
    """The human form of GET /api/v1/worker-pools."""
    rows = [
        (
            p["name"],
            ",".join(p.get("queues", [])),
            p.get("concurrency"),
            _replicas(p),
            (p.get("status") or {}).get("queue_ready"),
            (p.get("status") or {}).get("queue_in_flight"),
        )
        for p in answer.get("pools", [])
    ]
    body = table(
        ["NAME", "QUEUES", "CONCURRENCY", "READY/CURRENT (DESIRED)", "READY TASKS", "IN FLIGHT"], rows
    )
    return f"backend: {answer.get('backend')}\n{body}"


def pool_text(pool: dict[str, Any]) -> str:
    """The human form of one pool."""
    auto = pool.get("autoscaling") or {}
    lines = [
        f"name:         {pool['name']}",
        f"queues:       {', '.join(pool.get('queues', []))}",
        f"concurrency:  {pool.get('concurrency')}",
        f"replicas:     {_replicas(pool)}  (ready/current, desired)",
        "autoscaling:  "
        + (
            f"on, {auto.get('min_replicas')}..{auto.get('max_replicas')}, "
            f"{auto.get('target_tasks_per_replica')} tasks per replica"
            if auto.get("enabled")
            else "off"
        ),
    ]
    workers = (pool.get("status") or {}).get("workers")
    if workers:
        lines.append(f"workers:      {', '.join(workers)}")
    return "\n".join(lines)


def events_table(answer: dict[str, Any]) -> str:
    """The human form of a pool's events."""
    rows = [
        (dt.datetime.fromtimestamp(e["at"], dt.UTC).strftime("%Y-%m-%d %H:%M:%S"), e["kind"], e["message"])
        for e in answer.get("events", [])
    ]
    return table(["TIME (UTC)", "KIND", "MESSAGE"], rows)


def _show(args: argparse.Namespace, value: Any, human: Any) -> int:
    print(json.dumps(value, indent=2) if args.json else human(value))
    return 0


def _list(args: argparse.Namespace) -> int:
    return _show(args, api_client(args).get(BASE), pools_table)


def _get(args: argparse.Namespace) -> int:
    return _show(args, api_client(args).get(f"{BASE}/{_seg(args.name)}"), pool_text)


def _create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "name": args.name,
        "queues": [q.strip() for q in args.queues.split(",") if q.strip()],
        "concurrency": args.concurrency,
        "replicas": args.replicas,
    }
    for option in ("image", "app", "processes"):
        if getattr(args, option) is not None:
            body[option] = getattr(args, option)
    return _show(args, api_client(args).post(BASE, body), pool_text)


def _scale(args: argparse.Namespace) -> int:
    answer = api_client(args).post(f"{BASE}/{_seg(args.name)}/scale", {"replicas": args.replicas})
    return _show(args, answer, pool_text)


def _autoscale(args: argparse.Namespace) -> int:
    client = api_client(args)
    path = f"{BASE}/{_seg(args.name)}"
    if args.off:
        # Keep the pool's bounds (for when it is switched back on); only the switch changes.
        body = {**client.get(path)["autoscaling"], "enabled": False}
    else:
        body = {
            "enabled": True,
            "min_replicas": args.min,
            "max_replicas": args.max,
            "target_tasks_per_replica": args.target,
        }
    answer = client.request("PUT", f"{path}/autoscaling", body=body)
    return _show(args, answer, pool_text)


def _delete(args: argparse.Namespace) -> int:
    api_client(args).delete(f"{BASE}/{_seg(args.name)}")
    return _show(args, {"deleted": args.name}, lambda v: f"deleted {v['deleted']}; its workers drain")


def _events(args: argparse.Namespace) -> int:
    return _show(args, api_client(args).get(f"{BASE}/{_seg(args.name)}/events"), events_table)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")
    add_api_options(parser)


def add_commands(sub: Any) -> None:
    """Add ``pools`` and its subcommands to the ``jobqueue`` parser."""
    pools = sub.add_parser("pools", help="worker pools through the REST API")
    actions = pools.add_subparsers(dest="pools_action", required=True)

    p = actions.add_parser("list", help="every pool with replicas, depth and in-flight")
    _common(p)
    p.set_defaults(func=_list)

    p = actions.add_parser("show", help="one pool")
    p.add_argument("name")
    _common(p)
    p.set_defaults(func=_get)

    p = actions.add_parser("create", help="create a pool")
    p.add_argument("name")
    p.add_argument("--queues", required=True, help="comma-separated queue names")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--image", default=None, help="worker image (Kubernetes only)")
    p.add_argument("--app", default=None, help="package.module:app (Kubernetes only)")
    p.add_argument("--processes", type=int, default=None, help="worker processes per pod (Kubernetes only)")
    _common(p)
    p.set_defaults(func=_create)

    p = actions.add_parser("scale", help="hold exactly N replicas (turns autoscaling off)")
    p.add_argument("name")
    p.add_argument("replicas", type=int)
    _common(p)
    p.set_defaults(func=_scale)

    p = actions.add_parser("autoscale", help="switch autoscaling on (with bounds) or --off")
    p.add_argument("name")
    p.add_argument("--min", type=int, default=1)
    p.add_argument("--max", type=int, default=10)
    p.add_argument("--target", type=int, default=10, help="waiting + running tasks per replica")
    p.add_argument("--off", action="store_true", help="switch autoscaling off (hold the current replicas)")
    _common(p)
    p.set_defaults(func=_autoscale)

    p = actions.add_parser("delete", help="delete a pool (its workers finish their tasks first)")
    p.add_argument("name")
    _common(p)
    p.set_defaults(func=_delete)

    p = actions.add_parser("events", help="a pool's scaling and health history")
    p.add_argument("name")
    _common(p)
    p.set_defaults(func=_events)
