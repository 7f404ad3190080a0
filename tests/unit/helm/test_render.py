"""`helm lint` and `helm template` of the chart for the default values, every optional part switched on,
and external stores; every rendered manifest valid against the Kubernetes 1.33 schemas (strict: unknown
fields are errors) or, for jobqueue's own kinds, against the CRD schemas in crds/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from helm.fixtures import CHART, KUBE_VERSION, ROOT, VALUES_FILES, render, run_helm

pytestmark = pytest.mark.timeout(300)
# Kinds from operators the chart integrates with; their CRDs are not part of Kubernetes' schemas.
MONITORING_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def crd_files(root: Path) -> list[Path]:
    """jobqueue's CRDs and kopf's peering CRDs (crds/peering/), not the examples."""
    return [*root.glob("*.yaml"), *(root / "peering").glob("*.yaml")]


def crd_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for path in crd_files(ROOT / "crds"):
        crd = yaml.safe_load(path.read_text())
        (version,) = crd["spec"]["versions"]
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


@pytest.mark.parametrize("values", VALUES_FILES)
def test_lint_is_clean(helm_bin: Path, values: str) -> None:
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    if VALUES_FILES[values] is not None:
        args += ["-f", str(VALUES_FILES[values])]
    run_helm(helm_bin, *args)


@pytest.mark.parametrize("values", VALUES_FILES)
def test_rendered_manifests_are_valid_kubernetes_objects(helm_bin: Path, values: str) -> None:
    own_kinds = crd_schemas()
    docs = render(helm_bin, VALUES_FILES[values])
    assert docs
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in own_kinds:
            # OpenAPI v3.0 schemas are a subset of draft 4 (as tests/unit/crds checks the examples).
            errors = list(jsonschema.Draft4Validator(own_kinds[doc["kind"]]).iter_errors(doc))
            assert not errors, f"{where}: {[e.message for e in errors]}"
        elif doc["kind"] in MONITORING_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1", where
        else:
            try:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")


def test_all_on_renders_every_optional_part(helm_bin: Path) -> None:
    kinds = {doc["kind"] for doc in render(helm_bin, VALUES_FILES["all-on"])}
    assert kinds >= {
        "Ingress", "NetworkPolicy", "ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap",
        "ClusterRole", "JobQueue", "WorkerPool", "StatefulSet", "PodDisruptionBudget", "Job",
    }  # fmt: skip


def test_unknown_values_are_rejected_by_the_schema(helm_bin: Path) -> None:
    out = run_helm(
        helm_bin, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION, "--set", "api.replica=3",
        check=False,
    )  # fmt: skip
    assert "additional properties 'replica' not allowed" in out


def test_wrong_value_types_are_rejected_by_the_schema(helm_bin: Path) -> None:
    out = run_helm(
        helm_bin, "template", "rel", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "redis.appendfsync=sometimes", check=False,
    )  # fmt: skip
    assert "appendfsync" in out
    assert "must be one of" in out or "value must be one of" in out


def test_values_schema_is_generated_from_the_current_values() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import helm.values_schema as s; print(s.generate(), end='')"],
        capture_output=True, text=True, check=True, cwd=ROOT / "tests",
    )  # fmt: skip
    committed = (CHART / "values.schema.json").read_text()
    assert result.stdout == committed, "values.yaml changed: run python tests/helm/values_schema.py"


def test_chart_crds_are_the_repository_crds() -> None:
    # crds/ at the repository root is the source of truth; the chart ships byte-identical copies.
    repo = {p.name: p.read_text() for p in crd_files(ROOT / "crds")}
    chart = {p.name: p.read_text() for p in crd_files(CHART / "crds")}
    assert chart == repo
    assert {"kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev"} <= {
        yaml.safe_load(p.read_text())["metadata"]["name"] for p in crd_files(CHART / "crds")
    }


def test_dashboard_is_valid_json_with_every_section() -> None:
    dashboard = json.loads((CHART / "dashboards/jobqueue.json").read_text())
    rows = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert rows == {
        "Overview", "Queues", "Task latency", "Autoscaling", "Workers", "Schedules",
        "Operator and recorder health",
    }  # fmt: skip
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
