"""The CLI's --version and how it reports settings from the environment or a .env file."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from jobqueue import Client, Settings


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    return subprocess.run(
        [sys.executable, "-m", "jobqueue", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version(tmp_path: Path) -> None:
    done = cli("--version", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.strip() == f"jobqueue {metadata.version('jobqueue')}"


def test_a_dot_env_file_configures_the_cli(tmp_path: Path, settings: Settings, client: Client) -> None:
    handle = client.enqueue("add", [1, 2])
    (tmp_path / "jobqueue.env").write_text(
        f"JOBQUEUE_REDIS_URL={settings.redis_url.get_secret_value()}\nJOBQUEUE_KEY_PREFIX={settings.key_prefix}\n"
    )
    done = cli("status", handle.id, cwd=tmp_path, env={"JOBQUEUE_ENV_FILE": "jobqueue.env"})
    assert done.returncode == 0, done.stderr
    assert '"status": "QUEUED"' in done.stdout


def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JOBQUEUE_LEASE_SECONDS=abc\n")
    done = cli("status", "some-id", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: setting lease_seconds: Input should be a valid number, unable to parse string as a number"
    ]


def test_a_missing_env_file_is_one_line(tmp_path: Path) -> None:
    done = cli("status", "some-id", cwd=tmp_path, env={"JOBQUEUE_ENV_FILE": str(tmp_path / "nope.env")})
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == f"error: JOBQUEUE_ENV_FILE: {str(tmp_path / 'nope.env')!r} is not a readable file"
    )
