"""Without the helm binary a developer's run skips the chart tests and says how to build it; a CI run
(CI=true) fails instead, so CI can never pass by skipping. The same holds for Docker and the image tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHART_TEST = "tests/unit/helm/test_render.py::test_all_on_renders_every_optional_part"
IMAGE_TEST = "tests/e2e/images/test_images.py::test_worker_image_answers_help"

pytestmark = pytest.mark.timeout(120)


def run(test: str, env_changes: dict[str, str], ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env.update(env_changes)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=100,
    )  # fmt: skip


@pytest.mark.parametrize("ci", [None, "true"])
def test_missing_helm_skips_with_instructions_or_fails_in_ci(tmp_path: Path, ci: str | None) -> None:
    result = run(CHART_TEST, {"JOBQUEUE_HELM_CACHE": str(tmp_path / "empty")}, ci)
    assert "HELM NOT BUILT" in result.stdout
    assert "tests/helm/build-helm.sh" in result.stdout
    if ci is None:
        assert result.returncode == 0 and "1 skipped" in result.stdout, result.stdout
    else:
        assert result.returncode != 0 and "1 error" in result.stdout, result.stdout


@pytest.mark.parametrize("ci", [None, "true"])
def test_missing_docker_skips_with_instructions_or_fails_in_ci(tmp_path: Path, ci: str | None) -> None:
    # A PATH without docker: the fixture must notice before trying to build anything.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sh", "env"):
        (bin_dir / tool).symlink_to(f"/bin/{tool}")
    result = run(IMAGE_TEST, {"PATH": str(bin_dir)}, ci)
    assert "IMAGE TESTS NEED DOCKER" in result.stdout
    if ci is None:
        assert result.returncode == 0 and "1 skipped" in result.stdout, result.stdout
    else:
        assert result.returncode != 0, result.stdout
