"""Both images start as a non-root user, answer --help, and the worker image runs a task against the
test Redis with a read-only root filesystem, as the Helm chart runs it."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from jobqueue import Client, Settings

# The first build of an image downloads its dependencies from PyPI: minutes on a busy machine.
pytestmark = pytest.mark.timeout(1800)


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)


@pytest.mark.parametrize("kind", ["worker", "operator"])
def test_runs_as_a_numeric_non_root_user(images: dict[str, str], kind: str) -> None:
    result = docker("run", "--rm", "--network", "host", "--entrypoint", "id", images[kind], "-u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10001"
    config = docker("image", "inspect", "--format", "{{.Config.User}}", images[kind])
    assert config.stdout.strip() == "10001:10001"  # numeric, so runAsNonRoot can be verified


@pytest.mark.parametrize("kind", ["worker", "operator"])
def test_entry_point_runs_under_tini(images: dict[str, str], kind: str) -> None:
    entry = docker("image", "inspect", "--format", "{{json .Config.Entrypoint}}", images[kind])
    assert entry.stdout.strip().startswith('["tini","--",')


def test_worker_image_answers_help(images: dict[str, str]) -> None:
    result = docker("run", "--rm", "--network", "host", images["worker"], "--help")
    assert result.returncode == 0, result.stderr
    for command in ("worker", "api", "scheduler"):
        assert command in result.stdout


def test_operator_image_answers_help(images: dict[str, str]) -> None:
    result = docker("run", "--rm", "--network", "host", images["operator"], "--help")
    assert result.returncode == 0, result.stderr
    assert "--all-namespaces" in result.stdout and "--liveness" in result.stdout


def test_images_keep_no_pip_cache_or_build_tools(images: dict[str, str]) -> None:
    result = docker(
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        images["worker"],
        "-c",
        "ls -d /root/.cache/pip /tmp/.cache/pip /opt/jobqueue/bin/wheel"
        " /opt/jobqueue/lib/*/site-packages/setuptools 2>/dev/null; true",
    )
    assert result.stdout.strip() == ""


def test_worker_image_keeps_pip_for_builds_but_the_runtime_user_cannot_change_the_venv(
    images: dict[str, str],
) -> None:
    # pip stays so `FROM jobqueue-worker` + `pip install -r requirements.txt` works (docs/images.md), as
    # root at build time; uid 10001 cannot install into (or alter) the root-owned venv.
    result = docker(
        "run", "--rm", "--network", "host", "--entrypoint", "pip", images["worker"], "install", "six"
    )
    assert result.returncode != 0
    assert "Permission denied" in result.stdout + result.stderr
    env = docker(
        "image", "inspect", "--format", "{{json .Config.Env}} {{.Config.WorkingDir}}", images["worker"]
    )
    assert "PYTHONPATH=/app" in env.stdout and env.stdout.strip().endswith("/app")


@pytest.fixture
def worker_container(images: dict[str, str], settings: Settings) -> Iterator[str]:
    name = f"jq-worker-{uuid.uuid4().hex[:8]}"
    started = docker(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-e", f"JOBQUEUE_REDIS_URL={settings.redis_url.get_secret_value()}",
        "-e", f"JOBQUEUE_KEY_PREFIX={settings.key_prefix}",
        images["worker"], "worker", "--app", "jobqueue.demo:app", "--queues", "default", "--concurrency", "2",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    yield name
    logs = docker("logs", name)
    print(logs.stdout, logs.stderr)
    docker("rm", "-f", name)


def test_worker_image_processes_a_task(worker_container: str, client: Client) -> None:
    handle = client.enqueue("add", [2, 3])
    assert handle.result(timeout=60) == 5


def test_worker_container_drains_and_exits_zero_on_sigterm(worker_container: str, client: Client) -> None:
    assert client.enqueue("add", [1, 1]).result(timeout=60) == 2
    stopped = docker("stop", "--time", "30", worker_container, timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    code = docker("inspect", "--format", "{{.State.ExitCode}}", worker_container)
    assert code.stdout.strip() == "0"  # tini forwarded SIGTERM and the worker drained
