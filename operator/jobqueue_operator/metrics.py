"""Prometheus metrics of the operator itself, on a registry of their own (built by the entry point)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True)
class OperatorMetrics:
    """Reconcile duration and errors per kind and handler, and scale events per pool and direction."""

    registry: CollectorRegistry
    reconcile_seconds: Histogram
    reconcile_errors: Counter
    scale_events: Counter
    recovered_leases: Counter
    stale_pods_deleted: Counter


def build_metrics() -> OperatorMetrics:
    """A fresh registry with every operator metric registered."""
    registry = CollectorRegistry()
    return OperatorMetrics(
        registry=registry,
        reconcile_seconds=Histogram(
            "jobqueue_operator_reconcile_seconds",
            "Duration of one reconcile",
            ["kind", "handler"],
            registry=registry,
        ),
        reconcile_errors=Counter(
            "jobqueue_operator_reconcile_errors",
            "Reconciles that failed, by error class",
            ["kind", "handler", "error"],
            registry=registry,
        ),
        scale_events=Counter(
            "jobqueue_operator_scale_events",
            "Replica changes made to worker pools",
            ["namespace", "pool", "direction"],
            registry=registry,
        ),
        recovered_leases=Counter(
            "jobqueue_operator_recovered_leases",
            "Leases of dead or vanished workers given back to their queues",
            ["namespace", "pool"],
            registry=registry,
        ),
        stale_pods_deleted=Counter(
            "jobqueue_operator_stale_pods_deleted",
            "Running pods deleted because their worker stopped heartbeating",
            ["namespace", "pool"],
            registry=registry,
        ),
    )
