"""Every metric the Grafana dashboard and the alert rules query is one the code exports (scraped from the
API's /metrics against a real Redis) or one listed in helm/jobqueue/metrics-contract.txt as not exported
yet; a contract entry disappears once the code exports it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from helm.fixtures import CHART, VALUES_FILES, render
from jobqueue import Client, Settings
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(120)
METRIC = re.compile(r"\bjobqueue_[a-z0-9_]+")
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def contract() -> set[str]:
    lines = (CHART / "metrics-contract.txt").read_text().splitlines()
    return {line.split()[0] for line in lines if line.strip() and not line.startswith("#")}


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
def exported(settings: Settings, client: Client) -> Iterator[set[str]]:
    # One task in a queue so every per-queue family has a sample, not just its HELP line.
    client.enqueue("noop", queue="metrics")
    app = create_app(settings, ApiSettings(keys=SecretStr("k:admin")))
    with TestClient(app) as api:
        body = api.get("/metrics").text
    yield exported_names(body)


def test_the_scrape_exports_the_queue_metrics(exported: set[str]) -> None:
    assert {"jobqueue_queue_depth", "jobqueue_workers", "jobqueue_tasks_enqueued_total"} <= exported


def test_dashboard_and_alerts_use_only_exported_or_contracted_metrics(
    helm_bin: Path, exported: set[str]
) -> None:
    used = dashboard_names() | alert_names(helm_bin)
    unknown = {name for name in used if name not in exported and base_name(name) not in contract()}
    assert not unknown, f"neither exported nor in metrics-contract.txt: {sorted(unknown)}"


def test_contract_lists_only_metrics_that_are_used_and_not_yet_exported(
    helm_bin: Path, exported: set[str]
) -> None:
    used = {base_name(name) for name in dashboard_names() | alert_names(helm_bin)}
    assert not contract() & exported, "exported now: remove these from metrics-contract.txt"
    assert contract() <= used, f"no longer used: {sorted(contract() - used)}"
