"""Every metric the Grafana dashboard and the alert rules query is one some jobqueue process exports:
the API's /metrics (scraped against a real Redis after a real worker ran a task, a recorder published
its position and a schedule fired) or the operator's registry (its metrics port). A name used but
exported by neither fails the test, so a renamed metric can never leave a panel silently empty. And the
metric tables of docs/operations.md list exactly what each process exports, with its type and labels, so
the docs cannot drift from the code either way."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from helm.fixtures import CHART, VALUES_FILES, render
from jobqueue import App, Client, Settings
from jobqueue.record.positions import Position
from jobqueue.record.stream_reads import publish_positions
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
def api_exposition(settings: Settings, client: Client, start_worker: Callable[..., Any]) -> Iterator[str]:
    # Real samples, not just HELP lines: a task run by a worker (histograms), a recorder's published
    # position on the queue's stream (recorder progress, as a recorder mirrors it) and a fired schedule.
    start_worker("--pool", "thread", "--queues", "metrics")
    assert client.wait(client.enqueue("add", args=[1, 2], queue="metrics").id, timeout=30).result == 3
    stream = client.queue_keys("metrics").events
    publish_positions(client.redis, client.global_keys.record_positions, [Position(stream, "0-0", 0)])
    app = App(settings=settings)
    try:
        app.schedules.register("every_second", cron="* * * * * *", task="add", args=[1, 1], queue="metrics")
        wait_until(lambda: fire_due_schedules(app.client, "test").fired > 0, 5, interval=0.2)
    finally:
        app.close()
    api_app = create_app(settings, ApiSettings(keys=SecretStr("k:admin")))
    with TestClient(api_app) as api:
        wait_until(lambda: "jobqueue_task_run_seconds_count{" in api.get("/metrics").text, 15, interval=0.2)
        yield api.get("/metrics").text


@pytest.fixture
def api_exported(api_exposition: str) -> set[str]:
    return exported_names(api_exposition)


@pytest.fixture
def operator_exposition() -> str:
    metrics = build_metrics()
    metrics.pool_replicas.set("ns", "pool", PoolReplicas(desired=2, current=2, ready=1, min=1, max=4))
    return generate_latest(metrics.registry).decode()


@pytest.fixture
def operator_exported(operator_exposition: str) -> set[str]:
    return exported_names(operator_exposition)


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


DOCS = CHART.parents[1] / "docs" / "operations.md"
# Exposition types as the docs' tables name them.
DOC_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}


def documented(table_intro: str) -> dict[str, tuple[str, set[str]]]:
    """Metric name (counters without _total, as families are named) -> (type, label names) from the table
    that follows ``table_intro`` in docs/operations.md; ``{a,b}`` in a name stands for both."""
    lines = DOCS.read_text().splitlines()
    start = lines.index(table_intro) + 1
    rows = []
    for line in lines[start:]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("| `"):
            rows.append(line)
    out: dict[str, tuple[str, set[str]]] = {}
    for row in rows:
        name_cell, type_cell, labels_cell = (c.strip() for c in row.strip("|").split("|")[:3])
        pattern = name_cell.strip("`")
        labels = set(re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", labels_cell)))
        head, brace, rest = pattern.partition("{")
        names = [pattern]
        if brace:
            choices, _, tail = rest.partition("}")
            names = [head + choice + tail for choice in choices.split(",")]
        for name in names:
            family = name.removesuffix("_total") if type_cell == "counter" else name
            out[family] = (type_cell, labels)
    return out


def exported(exposition: str) -> dict[str, tuple[str, set[str]]]:
    """Family name -> (type, label names of its samples; le excluded) of a Prometheus text exposition."""
    out = {}
    for family in text_string_to_metric_families(exposition):
        if family.name.endswith("_created"):
            continue  # prometheus_client's creation time of each counter series, not a metric of ours
        labels = {k for sample in family.samples for k in sample.labels if k != "le"}
        out[family.name] = (DOC_TYPES.get(family.type, family.type), labels)
    return out


def differences(docs: dict[str, tuple[str, set[str]]], code: dict[str, tuple[str, set[str]]]) -> list[str]:
    problems = [f"{n}: exported, not in the docs" for n in sorted(code.keys() - docs.keys())]
    problems += [f"{n}: in the docs, not exported" for n in sorted(docs.keys() - code.keys())]
    for name in sorted(docs.keys() & code.keys()):
        (doc_type, doc_labels), (type_, labels) = docs[name], code[name]
        if doc_type != type_:
            problems.append(f"{name}: documented as a {doc_type}, exported as a {type_}")
        if labels and doc_labels != labels:  # a labelled counter with no sample yet shows no labels
            problems.append(f"{name}: documented labels {sorted(doc_labels)}, exported {sorted(labels)}")
    return problems


def test_the_docs_list_exactly_the_api_metrics_with_their_types_and_labels(api_exposition: str) -> None:
    docs = documented("From the API (`GET /metrics`):")
    assert differences(docs, exported(api_exposition)) == []


def test_the_docs_list_exactly_the_operator_metrics_with_their_types_and_labels(
    operator_exposition: str,
) -> None:
    docs = documented("From the operator (`operator.metricsPort`):")
    assert differences(docs, exported(operator_exposition)) == []
