"""Builds both images once per session on a locally made Debian base (tests/images/build-base-image.sh).

Without Docker or debootstrap the image tests skip and say how to get them; under CI=true they fail,
so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = ROOT / "tests/images/build-base-image.sh"
ENSURE_DOCKER = ROOT / "tests/images/ensure-docker.sh"
TAG = os.environ.get("JOBQUEUE_IMAGE_TAG", "test")
IMAGES = {"worker": f"jobqueue-worker:{TAG}", "operator": f"jobqueue-operator:{TAG}"}


def _unavailable(reason: str) -> None:
    message = f"IMAGE TESTS NEED DOCKER: {reason}; run bash {ENSURE_DOCKER.relative_to(ROOT)} (as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """{kind: tag} of the freshly built worker and operator images."""
    if shutil.which("docker") is None:
        _unavailable("the docker client is not installed")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        _unavailable("no Docker engine answers")
    base_present = (
        subprocess.run(
            ["docker", "image", "inspect", "jobqueue-base:bookworm"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if not base_present and shutil.which("debootstrap") is None:
        _unavailable("debootstrap is needed to make the base image")
    # Always rebuilt: layer caching makes an unchanged tree cost seconds, and a stale image would test
    # yesterday's code.
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)],
        env={**os.environ, "JOBQUEUE_IMAGE_TAG": TAG},
        capture_output=True,
        text=True,
        check=False,
        timeout=1500,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return IMAGES


@pytest.fixture(scope="session")
def quickstart_image(images: dict[str, str]) -> str:
    """examples/quickstart built FROM the freshly built worker image (its Dockerfile, as a user builds it)."""
    tag = f"quickstart-worker:{TAG}"
    built = subprocess.run(
        ["docker", "build", "--network", "host", "--build-arg", f"WORKER_IMAGE={images['worker']}",
         "-t", tag, str(ROOT / "examples" / "quickstart")],
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
        capture_output=True, text=True, check=False, timeout=840,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return tag


# The helm binary, for the test that installs the chart with these images on the docker node.
from helm.fixtures import helm_bin  # noqa: E402, F401 (fixture, by import)
