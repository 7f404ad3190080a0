"""The chart makes every jobqueue pod log JSON: the API, scheduler, recorder and migrations get
``--log-format json``, the operator too, and it is told to pass the same to every WorkerPool's workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from helm.fixtures import CHART, KUBE_VERSION, VALUES_FILES, render, run_helm

pytestmark = pytest.mark.timeout(120)

IMAGE_COMMANDS = {"api", "scheduler", "recorder", "migrate"}


def containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The containers of every workload, by container name."""
    found = {}
    for doc in docs:
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"} and pod:
            for container in pod["containers"]:
                found[container["name"]] = container
    return found


@pytest.mark.parametrize(("extra", "expected"), [((), "json"), (("--set", "logFormat=text"), "text")])
def test_every_jobqueue_process_gets_the_charts_log_format(
    helm_bin: Path, extra: tuple[str, ...], expected: str
) -> None:
    by_name = containers(render(helm_bin, VALUES_FILES["all-on"], *extra))
    jobqueue_commands = {name: c for name, c in by_name.items() if set(c.get("args", [])) & IMAGE_COMMANDS}
    assert {c["args"][2] for c in jobqueue_commands.values()} == IMAGE_COMMANDS
    for name, container in jobqueue_commands.items():
        assert container["args"][:2] == ["--log-format", expected], name
    operator = by_name["operator"]
    assert f"--log-format={expected}" in operator["args"]
    assert {"name": "JOBQUEUE_OPERATOR_WORKER_LOG_FORMAT", "value": expected} in operator["env"]


def test_an_unknown_log_format_is_refused_by_the_schema(helm_bin: Path) -> None:
    out = run_helm(
        helm_bin, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, "--set", "logFormat=xml",
        check=False,
    )  # fmt: skip
    assert "logFormat" in out and "must be one of" in out
