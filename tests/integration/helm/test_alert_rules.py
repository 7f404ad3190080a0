"""The chart's alert rules in a real Prometheus rule engine: ``promtool check rules`` loads them, and
``promtool test rules`` runs tests/helm/alert_rules_test.yaml, where every alert fires when it should and
stays silent when it should not (this file checks that each alert has both kinds of case)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from helm.prometheus_tools import alert_groups, prometheus_tool, write_rule_file

pytestmark = pytest.mark.timeout(120)
UNIT_TESTS = Path(__file__).resolve().parents[2] / "helm" / "alert_rules_test.yaml"


@pytest.fixture(scope="module")
def promtool() -> Path:
    return prometheus_tool("promtool")


def run(promtool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, check=False, timeout=60, cwd=cwd
    )


def test_the_rendered_rules_load_in_prometheus(promtool: Path, helm_bin: Path, tmp_path: Path) -> None:
    write_rule_file(helm_bin, tmp_path / "rules.yaml")
    result = run(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = sum(len(g["rules"]) for g in alert_groups(helm_bin))
    assert f"SUCCESS: {alerts} rules found" in result.stdout


def test_every_alert_fires_when_it_should_and_stays_silent_when_it_should_not(
    promtool: Path, helm_bin: Path, tmp_path: Path
) -> None:
    alerts = {r["alert"] for g in alert_groups(helm_bin) for r in g["rules"]}
    cases = [c for t in yaml.safe_load(UNIT_TESTS.read_text())["tests"] for c in t["alert_rule_test"]]
    fires = {c["alertname"] for c in cases if c["exp_alerts"]}
    silent = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert alerts - fires == set(), "alerts no case shows firing"
    assert alerts - silent == set(), "alerts no case shows staying silent"
    write_rule_file(helm_bin, tmp_path / "rules.yaml")
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    result = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_catch_an_alert_that_counts_api_replicas_twice(
    promtool: Path, helm_bin: Path, tmp_path: Path
) -> None:
    """The harness is not vacuous: the same rules with the dead-letter alert summing over the two API
    replicas (instead of keeping one copy) fail, on the case two replicas at 7.5 must stay silent."""
    rules = write_rule_file(helm_bin, tmp_path / "rules.yaml")
    text = rules.read_text()
    broken = text.replace(
        "sum by (queue) (max without (instance, pod) (increase(jobqueue_tasks_dead_lettered_total[15m])))",
        "sum by (queue) (increase(jobqueue_tasks_dead_lettered_total[15m]))",
    )
    assert broken != text
    rules.write_text(broken)
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    result = run(promtool, "test", "rules", UNIT_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "JobQueueDeadLettersGrowing" in result.stdout + result.stderr
