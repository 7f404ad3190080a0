"""examples/quickstart/Dockerfile, the documented way to build a worker image for your own tasks
(docs/images.md): FROM the freshly built worker image, pip install of the project's requirements, COPY of
its code. The result runs as the numeric non-root user and serves the project's tasks with a read-only
root filesystem and a tmpfs /tmp, as a WorkerPool runs it."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from jobqueue import Client, Settings

# The requirements layer downloads from PyPI on a cold cache.
pytestmark = pytest.mark.timeout(900)


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)


def test_runs_as_the_base_images_non_root_user(quickstart_image: str) -> None:
    assert docker("image", "inspect", "--format", "{{.Config.User}}", quickstart_image).stdout.strip() == (
        "10001:10001"
    )
    entry = docker("image", "inspect", "--format", "{{json .Config.Entrypoint}}", quickstart_image)
    assert entry.stdout.strip() == '["tini","--","jobqueue"]'


def test_the_projects_requirements_were_installed(quickstart_image: str, images: dict[str, str]) -> None:
    probe = ("run", "--rm", "--network", "host", "--entrypoint", "python")
    assert docker(*probe, quickstart_image, "-c", "import humanize, tasks").returncode == 0
    assert docker(*probe, images["worker"], "-c", "import humanize").returncode != 0  # not from the base


@pytest.fixture
def quickstart_worker(quickstart_image: str, settings: Settings) -> Iterator[str]:
    name = f"jq-quickstart-{uuid.uuid4().hex[:8]}"
    started = docker(
        "run", "-d", "--name", name, "--network", "host", "--read-only", "--tmpfs", "/tmp",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-e", f"JOBQUEUE_REDIS_URL={settings.redis_url.get_secret_value()}",
        "-e", f"JOBQUEUE_KEY_PREFIX={settings.key_prefix}",
        "-e", "JOBQUEUE_HEALTH_DIR=/tmp/jobqueue-health",
        quickstart_image, "worker", "--app", "tasks:app", "--queues", "default,email", "--pool", "thread",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    yield name
    logs = docker("logs", name)
    print(logs.stdout, logs.stderr)
    docker("rm", "-f", name)


def test_serves_the_projects_tasks_with_only_tmp_writable(quickstart_worker: str, client: Client) -> None:
    assert client.enqueue("add", [2, 3]).result(timeout=60) == 5
    # tempfile under a read-only root: the tmpfs /tmp (an emptyDir in a WorkerPool) is the scratch space.
    scratch = docker(
        "exec", quickstart_worker, "python", "-c",
        "import tempfile; f = tempfile.NamedTemporaryFile(); f.write(b'x'); f.flush(); print(f.name)",
    )  # fmt: skip
    assert scratch.returncode == 0, scratch.stderr
    assert scratch.stdout.startswith("/tmp/")
    assert docker("exec", quickstart_worker, "touch", "/app/x").returncode != 0
    health = docker("exec", quickstart_worker, "jobqueue", "worker-health", "--max-age", "30")
    assert health.returncode == 0, health.stderr
