"""Without the control-plane binaries a developer's run skips the cluster tests and says how to build
them; a CI run (CI=true) fails instead, so CI can never pass by skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CLUSTER_TEST = "tests/integration/operator/test_control_plane.py::test_version_is_the_pinned_release"

pytestmark = pytest.mark.timeout(120)


def run_cluster_test(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["JOBQUEUE_K8S_CACHE"] = str(tmp_path / "empty-cache")
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", CLUSTER_TEST],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )


def test_skipped_with_build_instructions_outside_ci(tmp_path: Path) -> None:
    result = run_cluster_test(tmp_path, ci=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "KUBERNETES CONTROL PLANE NOT BUILT" in result.stdout
    assert "tests/k8s/build-control-plane.sh" in result.stdout


def test_fails_under_ci(tmp_path: Path) -> None:
    result = run_cluster_test(tmp_path, ci="true")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 error" in result.stdout
    assert "KUBERNETES CONTROL PLANE NOT BUILT" in result.stdout
