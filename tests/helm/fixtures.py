"""Pytest fixtures for the helm binary and the chart (imported by the conftest of each helm test folder).

Without the binary the chart tests skip with the command that builds it; under CI=true they fail, so CI
can never pass by skipping.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm/jobqueue"
BUILD_SCRIPT = ROOT / "tests/helm/build-helm.sh"
# The Kubernetes version the chart is rendered for: the test control plane's (tests/k8s/versions.env).
KUBE_VERSION = "1.33.0"
VALUES_FILES = {
    "default": None,
    "all-on": CHART / "ci/all-on-values.yaml",
    "external-stores": CHART / "ci/external-stores-values.yaml",
}


def helm_path() -> Path:
    """Where build-helm.sh puts the binary (it may not be there yet)."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-bin"], capture_output=True, text=True, check=True
    )
    return Path(out.stdout.strip())


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    """The helm binary built from Go modules by tests/helm/build-helm.sh."""
    path = helm_path()
    if not os.access(path, os.X_OK):
        reason = f"HELM NOT BUILT: {path} missing; run bash tests/helm/build-helm.sh once (a few minutes)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


def run_helm(helm: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run helm; on failure the assertion shows its stderr."""
    result = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=300, env=env
    )
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
    return result.stdout if check else result.stdout + result.stderr


def render(helm: Path, values: Path | None, *extra: str) -> list[dict[str, Any]]:
    """`helm template` of the chart, as a list of manifests (hook and test manifests included)."""
    args = ["template", "rel", str(CHART), "--namespace", "jq", "--kube-version", KUBE_VERSION, *extra]
    if values is not None:
        args += ["-f", str(values)]
    return [doc for doc in yaml.safe_load_all(run_helm(helm, *args)) if doc]
