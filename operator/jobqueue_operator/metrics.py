"""Prometheus metrics of the operator itself, on a registry of their own (built by the entry point).

Names are the ones the chart's dashboard and alert rules query (tests/integration/helm/test_metric_names.py
checks it): reconciliations by outcome and their duration, stale pods deleted, leases recovered, and each
WorkerPool's replicas (desired by the autoscaler, current and ready from its Deployment, and the
autoscaling bounds).
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Reconcile outcomes: ok; retry = a temporary error kopf retries after a delay (Redis or the API server
# unreachable); error = a permanent error (a spec that cannot be applied) or a bug.
OUTCOMES = ("ok", "retry", "error")
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class PoolReplicas:
    """One WorkerPool's replica counts as of its last reconcile; min / max only under autoscaling."""

    desired: int
    current: int
    ready: int
    min: int | None
    max: int | None


class PoolReplicasCollector(Collector):
    """The replica gauges of every pool reconciled recently.

    A pool not reconciled for ``expire_seconds`` (deleted, or reconciled by another operator replica now)
    disappears from the scrape instead of freezing at its last value; plain Gauges would keep it forever.
    """

    FIELDS = ("desired", "current", "ready", "min", "max")

    def __init__(self, expire_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.expire_seconds = expire_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, str], tuple[float, PoolReplicas]] = {}

    def set(self, namespace: str, pool: str, replicas: PoolReplicas) -> None:
        """Record a pool's counts (called by each reconcile)."""
        with self._lock:
            self._pools[(namespace, pool)] = (self._clock(), replicas)

    def forget(self, namespace: str, pool: str) -> None:
        """Drop a pool at once (it was deleted)."""
        with self._lock:
            self._pools.pop((namespace, pool), None)

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on each scrape."""
        families = {
            name: GaugeMetricFamily(f"jobqueue_workerpool_replicas_{name}", doc, labels=["namespace", "pool"])
            for name, doc in (
                ("desired", "Replicas the autoscaler wants (the spec's replicas without autoscaling)"),
                ("current", "Replicas of the pool's Deployment (.status.replicas)"),
                ("ready", "Ready replicas of the pool's Deployment (.status.readyReplicas)"),
                ("min", "spec.autoscaling.minReplicas of pools with autoscaling"),
                ("max", "spec.autoscaling.maxReplicas of pools with autoscaling"),
            )
        }
        now = self._clock()
        with self._lock:
            for key in [k for k, (at, _) in self._pools.items() if now - at > self.expire_seconds]:
                del self._pools[key]
            pools = sorted(self._pools.items())
        for (namespace, pool), (_, replicas) in pools:
            for name in self.FIELDS:
                value = getattr(replicas, name)
                if value is not None:
                    families[name].add_metric([namespace, pool], value)
        yield from families.values()


@dataclass(frozen=True)
class OperatorMetrics:
    """Every metric the operator exports, registered on ``registry``."""

    registry: CollectorRegistry
    reconciliations: Counter
    reconcile_duration: Histogram
    reconcile_errors: Counter
    scale_events: Counter
    leases_recovered: Counter
    stale_pods_deleted: Counter
    pool_replicas: PoolReplicasCollector


def build_metrics(pool_expire_seconds: float = 300.0) -> OperatorMetrics:
    """A fresh registry with every operator metric registered; a pool's replica gauges disappear
    ``pool_expire_seconds`` after its last reconcile."""
    registry = CollectorRegistry()
    pool_replicas = PoolReplicasCollector(pool_expire_seconds)
    registry.register(pool_replicas)
    # Always 1: which release runs, and a series whose absence means the operator is not scraped (the
    # chart's JobQueueOperatorMetricsAbsent alert).
    Gauge(
        "jobqueue_operator_build_info",
        "Always 1: the jobqueue version and Python this operator runs",
        ["version", "python"],
        registry=registry,
    ).labels(metadata.version("jobqueue"), platform.python_version()).set(1)
    return OperatorMetrics(
        registry=registry,
        reconciliations=Counter(
            "jobqueue_operator_reconciliations",
            "Reconciles by kind and outcome (ok, retry = temporary error, error = permanent error or bug)",
            ["kind", "outcome"],
            registry=registry,
        ),
        reconcile_duration=Histogram(
            "jobqueue_operator_reconcile_duration_seconds",
            "Duration of one reconcile",
            ["kind"],
            buckets=RECONCILE_BUCKETS,
            registry=registry,
        ),
        reconcile_errors=Counter(
            "jobqueue_operator_reconcile_errors",
            "Reconciles that failed, by handler and error class (the detail behind outcome retry / error)",
            ["kind", "handler", "error"],
            registry=registry,
        ),
        scale_events=Counter(
            "jobqueue_operator_scale_events",
            "Replica changes made to worker pools",
            ["namespace", "pool", "direction"],
            registry=registry,
        ),
        leases_recovered=Counter(
            "jobqueue_operator_leases_recovered",
            "Leases of dead or vanished workers the operator gave back (or dead-lettered), by queue",
            ["queue"],
            registry=registry,
        ),
        stale_pods_deleted=Counter(
            "jobqueue_operator_stale_pods_deleted",
            "Running pods deleted because their worker stopped heartbeating",
            ["namespace", "pool"],
            registry=registry,
        ),
        pool_replicas=pool_replicas,
    )
