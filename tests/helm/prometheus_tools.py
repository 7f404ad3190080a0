"""The Prometheus binaries of Debian's ``prometheus`` package (``make deps`` installs it), the chart's
alert rules as a plain Prometheus rule file, the dashboard's queries, and a Prometheus server run by a
test (127.0.0.1, a free port, storage in the test's directory; never the packaged service).

Without the binaries the tests that need them skip with the command that installs them; under CI=true
they fail, so CI can never pass by skipping.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from helm.fixtures import CHART, VALUES_FILES, render
from jobqueue.embedded.redis_server import free_port

INSTALL = "apt-get install --no-install-recommends prometheus (make deps does it)"
# Metrics only the operator exports: the dashboard queries that need it (and Kubernetes) to show data.
OPERATOR_METRICS = re.compile(r"\bjobqueue_(operator|workerpool)_[a-z_]+")
API_METRICS = re.compile(r"\bjobqueue_(?!operator_|workerpool_)[a-z_]+")


def prometheus_tool(name: str) -> Path:
    """``promtool`` or ``prometheus`` from PATH (JOBQUEUE_TEST_PROMETHEUS_DIR overrides where to look)."""
    where = os.environ.get("JOBQUEUE_TEST_PROMETHEUS_DIR")
    found = shutil.which(name, path=where) if where else shutil.which(name)
    if found is None:
        reason = f"PROMETHEUS NOT INSTALLED: {name} missing; {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return Path(found)


def alert_groups(helm_bin: Path, *extra: str) -> list[dict[str, Any]]:
    """The rule groups of the chart's PrometheusRule, rendered with the all-on values."""
    (rule,) = [d for d in render(helm_bin, VALUES_FILES["all-on"], *extra) if d["kind"] == "PrometheusRule"]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def write_rule_file(helm_bin: Path, path: Path, *extra: str) -> Path:
    """The PrometheusRule's groups as the rule file a plain Prometheus (and promtool) reads."""
    path.write_text(yaml.safe_dump({"groups": alert_groups(helm_bin, *extra)}, sort_keys=False))
    return path


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, query) of every target of the chart's Grafana dashboard."""
    dashboard = json.loads((CHART / "dashboards/jobqueue.json").read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", [])]


def grafana_all(expr: str) -> str:
    """The query as Grafana sends it with every variable at "All" (allValue .*)."""
    return expr.replace("$queue", ".*").replace("$pool", ".*")


class Prometheus:
    """A Prometheus server of the test's own, scraping ``targets`` ({job: "host:port"}) every second and
    evaluating the rule file ``rules.yaml`` in ``workdir`` if there is one."""

    def __init__(self, binary: Path, workdir: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        if (workdir / "rules.yaml").exists():
            config["rule_files"] = ["rules.yaml"]
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = (workdir / "prometheus.log").open("w")
        self.process = subprocess.Popen(
            [str(binary), "--config.file=prometheus.yml", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def get(self, path: str, **params: str) -> Any:
        """The ``data`` of a successful HTTP API answer."""
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def numbers(self, expr: str) -> list[float]:
        """The finite values of an instant query (NaN, such as a quantile of no observations, is no data)."""
        result = self.get("/api/v1/query", query=expr)["result"]
        values = [float(r["value"][1]) for r in result]
        return [v for v in values if not math.isnan(v)]

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health, last error and state."""
        return [r for g in self.get("/api/v1/rules")["groups"] for r in g["rules"]]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()
