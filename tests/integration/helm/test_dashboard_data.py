"""A real Prometheus scraping a running stack answers every query of the Grafana dashboard with data.

`jobqueue up` runs the API, the scheduler, the recorder (on embedded PostgreSQL) and supervised worker
processes with its demo producer (tasks that succeed, sleep, fail and retry); the test registers a
schedule that fires every second. Prometheus (Debian's binary, run here on 127.0.0.1, a free port and a
temporary storage directory, never the packaged service) scrapes the API's /metrics every second and
evaluates the chart's alert rules. Then:

- every dashboard query (``$queue`` and ``$pool`` as Grafana's "All") returns at least one number, but
  the ones on the operator's metrics (NEEDS_THE_OPERATOR: it needs Kubernetes and a WorkerPool), which
  tests/integration/operator/test_operator_dashboard.py asks of a real operator;
- every alert rule evaluates without error, and none fires on this healthy stack;
- once the stack stops, JobQueueMetricsAbsent goes pending: the API's series are marked stale at the
  first failed scrape, and absent() sees it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_calls import OutputLines, poll, request

from helm.prometheus_tools import (
    API_METRICS,
    OPERATOR_METRICS,
    Prometheus,
    dashboard_queries,
    grafana_all,
    prometheus_tool,
    write_rule_file,
)
from jobqueue.embedded.redis_server import free_port

pytestmark = pytest.mark.timeout(420)
# Why the operator's queries are not asked here (tests/integration/operator/test_operator_dashboard.py
# asks them of a real operator on the test control plane).
NEEDS_THE_OPERATOR = "exported by the operator alone, which needs Kubernetes and a WorkerPool"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """`jobqueue up` with its demo producer; yields (process, API port, admin key)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jobqueue", "up", "--data-dir", str(tmp_path / "stack"), "--redis-port", "0",
         "--api-port", str(port), "--demo-rate", "5"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env=clean_env(),
    )  # fmt: skip
    reader = OutputLines(process)
    try:
        reader.wait_for_line("Web UI and API:", 240)
        key = reader.wait_for_line("API key:", 10).split()[-1]
        base = f"http://127.0.0.1:{port}"
        poll(lambda: request("GET", f"{base}/readyz", key)[0] == 200, 60, "/readyz")
        yield process, port, key
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        reader.join(10)
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture
def prometheus(
    tmp_path: Path, helm_bin: Path, stack: tuple[subprocess.Popen[str], int, str]
) -> Iterator[Prometheus]:
    binary = prometheus_tool("prometheus")
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    # The chart as `jobqueue up` resembles it: no operator (whose absent-metrics alert would arm).
    write_rule_file(helm_bin, workdir / "rules.yaml", "--set", "operator.enabled=false")
    server = Prometheus(binary, workdir, {"jobqueue-api": f"127.0.0.1:{stack[1]}"})
    try:
        poll(server.ready, 60, "Prometheus to be ready")
        yield server
    finally:
        server.stop()


def test_a_real_prometheus_scraping_jobqueue_up_answers_every_dashboard_query(
    stack: tuple[subprocess.Popen[str], int, str], prometheus: Prometheus
) -> None:
    process, port, key = stack
    # A schedule firing every second, beside the demo producer's tasks.
    status, body = request(
        "POST", f"http://127.0.0.1:{port}/api/v1/schedules", key,
        {"name": "every-second", "cron": "* * * * * *", "task": "add", "args": [1, 2]},
    )  # fmt: skip
    assert status == 201, body
    queries = dashboard_queries()
    operator_only = [(t, q) for t, q in queries if OPERATOR_METRICS.search(q)]
    # The exclusion is exactly the operator's metrics: no query of an API metric can hide behind it.
    assert all(not API_METRICS.search(q) for _, q in operator_only)
    expected = [(t, q) for t, q in queries if (t, q) not in operator_only]
    missing = expected

    def all_answer() -> bool:
        nonlocal missing
        missing = [(t, q) for t, q in missing if not prometheus.numbers(grafana_all(q))]
        return not missing

    try:
        poll(all_answer, 180, "every dashboard query to return data")
    except AssertionError:
        pytest.fail(f"dashboard queries with no data after 180 s: {missing}")
    print(
        f"\n{len(expected)} of {len(queries)} dashboard queries returned data; "
        f"{len(operator_only)} {NEEDS_THE_OPERATOR}: {[t for t, _ in operator_only]}"
    )
    assert len(operator_only) <= 10

    # The chart's alert rules, evaluated on live data: no error, and nothing fires on a healthy stack.
    def evaluated() -> list[dict[str, Any]]:
        rules = prometheus.rules()
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else []

    rules = poll(evaluated, 30, "the alert rules to be evaluated")
    assert {r["name"]: (r["health"], r.get("lastError", "")) for r in rules} == {
        r["name"]: ("ok", "") for r in rules
    }
    assert [r["name"] for r in rules if r["state"] != "inactive"] == []
    assert prometheus.numbers("jobqueue_build_info") == [1.0]

    # The stack stops: the failed scrape marks the API's series stale and the absent() alert arms.
    os.killpg(process.pid, signal.SIGINT)
    process.wait(60)

    def absent_alert_state() -> str:
        (absent,) = [r for r in prometheus.rules() if r["name"] == "JobQueueMetricsAbsent"]
        return str(absent["state"])

    poll(lambda: absent_alert_state() == "pending", 30, "JobQueueMetricsAbsent to be pending")
