"""``jobqueue worker-health``: the worker container's liveness probe (see jobqueue.worker.health)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from jobqueue.errors import ValidationError
from jobqueue.worker.health import read_health


def _worker_health(args: argparse.Namespace) -> int:
    from jobqueue.settings import Settings  # noqa: PLC0415 - read when the command runs, not at --help

    directory = args.dir or Settings().health_dir
    if not directory:
        raise ValidationError("dir", "set --dir or JOBQUEUE_HEALTH_DIR (where the workers touch their files)")
    if not args.max_age > 0:
        raise ValidationError("max_age", "must be a positive number of seconds")
    report = read_health(Path(directory), args.max_age)
    print(report.describe(), file=sys.stdout if report.healthy else sys.stderr)
    return 0 if report.healthy else 1


def add_commands(sub: Any) -> None:
    """Add ``worker-health`` to the ``jobqueue`` command tree."""
    h = sub.add_parser(
        "worker-health",
        help="exit 0 when every worker process of this container ran its heartbeat loop recently (a probe)",
    )
    h.add_argument("--dir", default=None, help="liveness directory (default $JOBQUEUE_HEALTH_DIR)")
    h.add_argument("--max-age", type=float, default=60.0, help="seconds since a worker's last heartbeat pass")
    h.set_defaults(func=_worker_health)
