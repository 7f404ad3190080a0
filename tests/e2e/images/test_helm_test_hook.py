"""The chart's `helm test` hook, run for real: its script, as rendered, in the worker image against an
API container and the test Redis (the test control plane has no container runtime to run it there)."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from jq_testing import wait_until

from helm.fixtures import render
from jobqueue import Settings
from jobqueue.embedded.redis_server import free_port

pytestmark = pytest.mark.timeout(600)
API_KEY = "helm-test-admin-key"


def docker(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)


def connection_env(settings: Settings) -> list[str]:
    return [
        "-e", f"JOBQUEUE_REDIS_URL={settings.redis_url.get_secret_value()}",
        "-e", f"JOBQUEUE_KEY_PREFIX={settings.key_prefix}",
    ]  # fmt: skip


@pytest.fixture
def api_url(images: dict[str, str], settings: Settings) -> Iterator[str]:
    port = free_port()
    name = f"jq-api-{uuid.uuid4().hex[:8]}"
    started = docker(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
        *connection_env(settings), "-e", f"JOBQUEUE_API_KEYS={API_KEY}:admin",
        images["worker"], "api", "--host", "127.0.0.1", "--port", str(port),
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    ready = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/readyz', timeout=2)"
    wait_until(
        lambda: docker("exec", name, "python3", "-c", ready, url, timeout=30).returncode == 0,
        timeout=60,
        interval=0.5,
    )
    yield url
    docker("rm", "-f", name)


def test_helm_test_hook_submits_through_the_api_and_sees_the_result(
    images: dict[str, str], helm_bin: Path, settings: Settings, api_url: str
) -> None:
    (pod,) = [d for d in render(helm_bin, None) if d["kind"] == "Pod"]
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    result = docker(
        "run", "--rm", "--network", "host", "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL",
        *connection_env(settings), "-e", f"API={api_url}", "-e", f"API_KEY={API_KEY}",
        "-e", f"QUEUE={env['QUEUE']}", "-e", f"TIMEOUT={env['TIMEOUT']}",
        "--entrypoint", container["command"][0], images["worker"],
        *container["command"][1:], *container["args"],
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded with 5" in result.stdout
