"""``jobqueue-operator``: build settings, connections, metrics and the handler registry, then run kopf."""

from __future__ import annotations

import argparse
import logging
import random
import threading
import time
from collections.abc import Sequence

import kopf
from prometheus_client import start_http_server

from jobqueue.broker.client import Client
from jobqueue.log_config import LOG_FORMATS, configure_logging
from jobqueue.settings import Settings
from jobqueue_operator.context import OperatorContext
from jobqueue_operator.handlers import build_registry
from jobqueue_operator.kube import Kube, connect
from jobqueue_operator.metrics import build_metrics
from jobqueue_operator.peering import kopf_settings, leader_priority
from jobqueue_operator.settings import OperatorSettings

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; each overrides its JOBQUEUE_OPERATOR_* setting."""
    parser = argparse.ArgumentParser(prog="jobqueue-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", default=None, help="watch this namespace (repeatable)"
    )
    scope.add_argument(
        "--all-namespaces", "-A", action="store_true", default=None, help="watch the whole cluster"
    )
    parser.add_argument(
        "--interval", type=float, default=None, help="seconds between reconciles of live state"
    )
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="Prometheus port (0: no metrics server)"
    )
    parser.add_argument(
        "--liveness", default=None, help="liveness endpoint URL, e.g. http://0.0.0.0:8080/healthz"
    )
    parser.add_argument(
        "--peering",
        default=None,
        help="run peered under this KopfPeering object (several replicas, one active)",
    )
    parser.add_argument("--priority", type=int, default=None, help="peering priority (default: oldest leads)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="auto",
        help="auto (default): JSON lines unless stderr is a terminal; text; json (kopf's per-object "
        "records carry their object as 'object', as kopf's own JSON format does)",
    )
    return parser.parse_args(argv)


def build_settings(args: argparse.Namespace) -> OperatorSettings:
    """Environment settings with the command line's overrides applied."""
    overrides: dict[str, object] = {}
    if args.namespace:
        overrides["namespaces"] = args.namespace
    if args.all_namespaces:
        overrides["all_namespaces"] = True
    if args.interval is not None:
        overrides["interval_seconds"] = args.interval
    if args.metrics_port is not None:
        overrides["metrics_port"] = args.metrics_port
    if args.liveness is not None:
        overrides["liveness_endpoint"] = args.liveness
    if args.peering is not None:
        overrides["peering"] = args.peering
    if args.priority is not None:
        overrides["priority"] = args.priority
    return OperatorSettings(**overrides)  # type: ignore[arg-type]


def run(settings: OperatorSettings, core: Settings, stop_flag: threading.Event | None = None) -> None:
    """Run the operator until ``stop_flag`` is set (or SIGINT / SIGTERM)."""
    if not settings.all_namespaces and not settings.namespaces:
        raise SystemExit("jobqueue-operator: name --namespace (repeatable) or --all-namespaces")
    # A pool's replica gauges outlive a few missed reconciles, not its deletion.
    metrics = build_metrics(pool_expire_seconds=max(60.0, 5 * settings.interval_seconds))
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=metrics.registry)
    client = Client(core)
    api = connect()
    try:
        ctx = OperatorContext(settings=settings, client=client, kube=Kube(api), metrics=metrics)
        peered = settings.peering is not None
        priority = settings.priority
        if peered and priority is None:
            priority = leader_priority(time.time(), random.Random())  # noqa: S311 - a tie-break, not a secret
        if peered:
            log.info("peering %r with priority %s", settings.peering, priority)
        kopf.run(
            registry=build_registry(ctx),
            settings=kopf_settings(lifetime_seconds=settings.peering_lifetime_seconds),
            # Peered: mandatory (kopf starts paused until it has seen its peers); else standalone, where
            # one replica at a time must be guaranteed by the Deployment (strategy Recreate).
            standalone=not peered,
            peering_name=settings.peering,
            priority=priority,
            clusterwide=settings.all_namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=settings.liveness_endpoint or None,
            stop_flag=stop_flag,
        )
    finally:
        client.close()
        api.close()  # type: ignore[no-untyped-call]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``jobqueue-operator``."""
    args = parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    run(build_settings(args), Settings())
