"""Every metric the Grafana dashboard and the alert rules query is one some jobqueue process exports:
the API's /metrics (scraped against a real Redis after a real worker ran a task, a recorder group exists
and a schedule fired) or the operator's registry (its metrics port). A name used but exported by neither
fails the test, so a renamed metric can never leave a panel silently empty."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until
from prometheus_client import generate_latest
from pydantic import SecretStr

from helm.fixtures import CHART, VALUES_FILES, render
from jobqueue import App, Client, Settings
from jobqueue.schedules.registry import fire_due_schedules
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings
from jobqueue_operator.metrics import PoolReplicas, build_metrics

pytestmark = pytest.mark.timeout(120)
METRIC = re.compile(r"\bjobqueue_[a-z0-9_]+")
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def base_name(name: str) -> str:
    return HISTOGRAM_SERIES.sub("", name)


def exported_names(exposition: str) -> set[str]:
    """Family names from HELP/TYPE lines and series names from samples, in Prometheus text format."""
    names = set()
    for line in exposition.splitlines():
        token = line.split(" ", 3)[2] if line.startswith("#") else line.split("{")[0].split(" ")[0]
        names.update(METRIC.findall(token))
    return names


def dashboard_names() -> set[str]:
    return set(METRIC.findall((CHART / "dashboards/jobqueue.json").read_text()))


def alert_names(helm_bin: Path) -> set[str]:
    (rule,) = [d for d in render(helm_bin, VALUES_FILES["all-on"]) if d["kind"] == "PrometheusRule"]
    exprs = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    assert len(exprs) >= 6
    return {name for expr in exprs for name in METRIC.findall(expr)}


@pytest.fixture
def api_exported(settings: Settings, client: Client, start_worker: Callable[..., Any]) -> Iterator[set[str]]:
    # Real samples, not just HELP lines: a task run by a worker (histograms), a recorder group on the
    # queue's stream (recorder progress) and a fired schedule.
    start_worker("--pool", "thread", "--queues", "metrics")
    assert client.wait(client.enqueue("add", args=[1, 2], queue="metrics").id, timeout=30).result == 3
    client.redis.xgroup_create(client.queue_keys("metrics").events, "jobqueue-recorder", id="0")
    app = App(settings=settings)
    try:
        app.schedules.register("every_second", cron="* * * * * *", task="add", args=[1, 1], queue="metrics")
        wait_until(lambda: fire_due_schedules(app.client, "test").fired > 0, 5, interval=0.2)
    finally:
        app.close()
    api_app = create_app(settings, ApiSettings(keys=SecretStr("k:admin")))
    with TestClient(api_app) as api:
        wait_until(lambda: "jobqueue_task_run_seconds_count{" in api.get("/metrics").text, 15, interval=0.2)
        yield exported_names(api.get("/metrics").text)


@pytest.fixture
def operator_exported() -> set[str]:
    metrics = build_metrics()
    metrics.pool_replicas.set("ns", "pool", PoolReplicas(desired=2, current=2, ready=1, min=1, max=4))
    return exported_names(generate_latest(metrics.registry).decode())


def test_the_scrapes_export_queue_task_and_operator_metrics(
    api_exported: set[str], operator_exported: set[str]
) -> None:
    assert {"jobqueue_queue_depth", "jobqueue_workers", "jobqueue_tasks_enqueued_total"} <= api_exported
    assert {"jobqueue_task_run_seconds_bucket", "jobqueue_task_queue_wait_seconds_count"} <= api_exported
    assert {"jobqueue_recorder_lag_seconds", "jobqueue_schedule_fires_total"} <= api_exported
    assert "jobqueue_recorder_events_rejected_total" in api_exported
    assert {
        "jobqueue_workerpool_replicas_max",
        "jobqueue_operator_reconciliations_total",
    } <= operator_exported


def test_dashboard_and_alerts_use_only_exported_metrics(
    helm_bin: Path, api_exported: set[str], operator_exported: set[str]
) -> None:
    exported = api_exported | operator_exported
    used = dashboard_names() | alert_names(helm_bin)
    unknown = {name for name in used if name not in exported and base_name(name) not in exported}
    assert not unknown, f"used by the dashboard or alert rules but exported by no process: {sorted(unknown)}"
    assert used & operator_exported and used & api_exported
