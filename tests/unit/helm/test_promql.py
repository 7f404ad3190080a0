"""Every query in the Grafana dashboard and every alert expression parses as PromQL (a typo would show an
empty panel or an alert that never fires, silently), and every alert tells the on-call what to do: a
summary, a description and a runbook_url to a section of docs/runbooks.md that exists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from helm.fixtures import CHART, VALUES_FILES, render

RUNBOOKS = CHART.parents[1] / "docs" / "runbooks.md"
pytestmark = pytest.mark.timeout(120)


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((CHART / "dashboards/jobqueue.json").read_text())
    queries = [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(queries) >= 20
    return queries


def alert_rules(helm_bin: Path) -> list[dict[str, Any]]:
    (rule,) = [d for d in render(helm_bin, VALUES_FILES["all-on"]) if d["kind"] == "PrometheusRule"]
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_dashboard_queries_parse() -> None:
    for title, expr in dashboard_queries():
        # Grafana substitutes $queue / $pool inside label matchers, where they are plain strings to PromQL.
        try:
            promql_parser.parse(expr)
        except ValueError as exc:
            pytest.fail(f"panel {title!r}: {exc}: {expr}")


def test_alert_expressions_parse_and_each_alert_says_what_to_do(helm_bin: Path) -> None:
    rules = alert_rules(helm_bin)
    assert {r["alert"] for r in rules} >= {
        "JobQueueBacklogWithoutWorkers", "JobQueueOldestTaskOverSLO", "JobQueueDeadLettersGrowing",
        "JobQueueStaleWorkers", "JobQueueWorkerPoolAtMax", "JobQueueRecorderLag", "JobQueueRecordRejects",
        "JobQueueMetricsAbsent",
    }  # fmt: skip
    for rule in rules:
        try:
            promql_parser.parse(rule["expr"])
        except ValueError as exc:
            pytest.fail(f"{rule['alert']}: {exc}")
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert re.fullmatch(r"[0-9]+[smh]", rule.get("for", "0s")), rule["alert"]


def runbook_sections() -> dict[str, str]:
    """GitHub's anchor of each level-2 section of docs/runbooks.md -> its text."""
    sections: dict[str, str] = {}
    anchor = None
    for line in RUNBOOKS.read_text().splitlines():
        if line.startswith("## "):
            anchor = re.sub(r"[^a-z0-9 _-]", "", line[3:].strip().lower()).replace(" ", "-")
            sections[anchor] = ""
        elif anchor is not None:
            sections[anchor] += line + "\n"
    return sections


def test_every_alert_links_its_own_runbook_section_which_says_what_to_do(helm_bin: Path) -> None:
    sections = runbook_sections()
    base = "https://runbooks.example/jobqueue.md"
    rendered = render(
        helm_bin, VALUES_FILES["all-on"], "--set", f"monitoring.prometheusRule.runbookBaseUrl={base}"
    )
    (rule,) = [d for d in rendered if d["kind"] == "PrometheusRule"]
    for r in (r for g in rule["spec"]["groups"] for r in g["rules"]):
        url = r["annotations"].get("runbook_url", "")
        assert url == f"{base}#{r['alert'].lower()}", r["alert"]  # the base comes from values
        text = sections.get(url.partition("#")[2], "")
        assert "**What it means.**" in text and "**Fix.**" in text, f"{r['alert']}: no runbook section"
    # No section left for an alert that was renamed or removed.
    assert set(sections) == {r["alert"].lower() for g in rule["spec"]["groups"] for r in g["rules"]}


def test_slo_threshold_comes_from_values(helm_bin: Path) -> None:
    rules = render(helm_bin, None, "--set", "monitoring.prometheusRule.enabled=true",
                   "--set", "monitoring.prometheusRule.oldestTaskAgeSloSeconds=42")  # fmt: skip
    (rule,) = [d for d in rules if d["kind"] == "PrometheusRule"]
    (slo,) = [
        r for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "JobQueueOldestTaskOverSLO"
    ]
    assert slo["expr"].strip().endswith("> 42")


# Exported by the operator itself (one process acting, so its series are summed as they are).
OWN_PROCESS_METRICS = re.compile(r"^jobqueue_(operator|workerpool)_")


def api_selectors_outside_max(node: Any, nearest_aggregation: str | None = None) -> list[str]:
    """Names of API metrics whose nearest enclosing aggregation is not a max (or that have none)."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        name = node.name or ""
        api_metric = name.startswith("jobqueue_") and not OWN_PROCESS_METRICS.match(name)
        return [name] if api_metric and nearest_aggregation != "max" else []
    if kind == "AggregateExpr":
        return api_selectors_outside_max(node.expr, str(node.op))
    if kind == "Call" and node.func.name == "absent":
        return []  # 1 when no replica exports the series, whatever their number: nothing is counted
    children = {
        "BinaryExpr": lambda n: [n.lhs, n.rhs],
        "Call": lambda n: list(n.args),
        "MatrixSelector": lambda n: [n.vector_selector],
        "ParenExpr": lambda n: [n.expr],
        "UnaryExpr": lambda n: [n.expr],
        "SubqueryExpr": lambda n: [n.expr],
    }.get(kind, lambda n: [])(node)
    return [name for child in children for name in api_selectors_outside_max(child, nearest_aggregation)]


def test_api_metrics_are_counted_once_whatever_the_number_of_api_replicas(helm_bin: Path) -> None:
    """Every API replica exports the same cluster-wide series (read from Redis), so a query must keep one
    copy ("max without (instance, pod)", or a max) before it sums: with the default 2 replicas a plain
    sum doubles every panel and halves every alert threshold."""
    queries = dashboard_queries() + [(r["alert"], r["expr"]) for r in alert_rules(helm_bin)]
    doubled = {
        title: names
        for title, expr in queries
        if (names := api_selectors_outside_max(promql_parser.parse(expr)))
    }
    assert not doubled, doubled
