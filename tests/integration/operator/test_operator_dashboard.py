"""The dashboard's operator panels, from a real Prometheus scraping the real operator.

tests/integration/helm/test_dashboard_data.py asks every other dashboard query of a Prometheus scraping
`jobqueue up`; the queries on the operator's metrics need Kubernetes, so they are asked here: the operator
(subprocess) reconciles a WorkerPool with autoscaling on the test control plane, and Debian's Prometheus
binary (127.0.0.1, a free port, storage in the test's directory) scrapes its metrics port every second and
evaluates the chart's alert rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from http_calls import poll
from kubernetes import client as k8s_client

from helm.fixtures import helm_bin  # noqa: F401 (fixture, by import)
from helm.prometheus_tools import (
    API_METRICS,
    OPERATOR_METRICS,
    Prometheus,
    dashboard_queries,
    grafana_all,
    prometheus_tool,
    write_rule_file,
)
from k8s.custom_resources import create_cr
from k8s.operator_process import OperatorProcess

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("operator")]


@pytest.fixture
def prometheus(tmp_path: Path, helm_bin: Path, operator: OperatorProcess) -> Iterator[Prometheus]:  # noqa: F811
    binary = prometheus_tool("prometheus")
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    write_rule_file(helm_bin, workdir / "rules.yaml")
    server = Prometheus(binary, workdir, {"jobqueue-operator": f"127.0.0.1:{operator.metrics_port}"})
    try:
        poll(server.ready, 60, "Prometheus to be ready")
        yield server
    finally:
        server.stop()


def test_every_operator_panel_of_the_dashboard_shows_data(
    prometheus: Prometheus, kube_api: k8s_client.ApiClient, kube_namespace: str
) -> None:
    # Autoscaling pinned at its maximum of 1: the replica gauges (bounds included) and the "at max" alert.
    create_cr(
        kube_api,
        kube_namespace,
        "workerpools",
        {
            "kind": "WorkerPool",
            "metadata": {"name": "dash"},
            "spec": {
                "queues": ["dash"],
                "image": "example.invalid/jobqueue-worker:test",  # kwok pods never run it
                "app": "jq_test_app:app",
                "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 1},
                # No worker runs in the pod: it must not be deleted as stale, which would make the
                # counters below count an event instead of showing their series before any.
                "health": {"heartbeatStaleSeconds": 3600, "leaseOrphanSeconds": 3600},
            },
        },
    )
    queries = [(t, q) for t, q in dashboard_queries() if OPERATOR_METRICS.search(q)]
    assert queries and all(not API_METRICS.search(q) for _, q in queries)
    missing = queries

    def all_answer() -> bool:
        nonlocal missing
        missing = [(t, q) for t, q in missing if not prometheus.numbers(grafana_all(q))]
        return not missing

    try:
        poll(all_answer, 120, "every operator query of the dashboard to return data")
    except AssertionError:
        pytest.fail(f"operator queries with no data after 120 s: {missing}")
    print(f"\nall {len(queries)} operator queries of the dashboard returned data")
    # The pool's event counters exist at 0 before any event, so their first increase is seen.
    assert prometheus.numbers('jobqueue_operator_stale_pods_deleted_total{pool="dash"}') == [0.0]
    assert prometheus.numbers('jobqueue_operator_leases_recovered_total{queue="dash"}') == [0.0]

    def at_max_pending() -> bool:
        rules = {r["name"]: r for r in prometheus.rules()}
        return rules["JobQueueWorkerPoolAtMax"]["state"] == "pending"

    poll(at_max_pending, 30, "JobQueueWorkerPoolAtMax to be pending on the pinned pool")
    rules = prometheus.rules()
    assert {r["name"]: r["state"] for r in rules}["JobQueueOperatorMetricsAbsent"] == "inactive"
    assert {r["name"]: (r["health"], r.get("lastError", "")) for r in rules} == {
        r["name"]: ("ok", "") for r in rules
    }
