"""The pytest plugin as users load it: pytest run as a subprocess, the plugin found through its
``pytest11`` entry point, on the example project and on small projects written here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "examples" / "quickstart"


def run_pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``pytest`` in ``project``, as a user runs it there (its own configuration, none of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBQUEUE_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


def test_the_quickstart_project_passes_its_own_tests() -> None:
    done = run_pytest(QUICKSTART)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.search(r"\b6 passed\b", done.stdout), done.stdout


def test_docs_testing_shows_exactly_the_example_test_file() -> None:
    doc = (ROOT / "docs" / "testing.md").read_text()
    shown = doc.split("<!-- example: examples/quickstart/tests/test_tasks.py -->\n```python\n", 1)[1]
    shown = shown.split("\n```\n", 1)[0]
    assert shown + "\n" == (QUICKSTART / "tests" / "test_tasks.py").read_text()


def write_project(path: Path, tests: str, ini: str = "jobqueue_app = mytasks:app\n") -> Path:
    path.mkdir()
    (path / "pytest.ini").write_text(f"[pytest]\npythonpath = .\n{ini}")
    (path / "mytasks.py").write_text(
        "from jobqueue import App\n\napp = App()\n\n\n@app.task\ndef echo(value):\n    return value\n"
    )
    (path / "test_it.py").write_text(tests)
    return path


def test_the_plugin_starts_nothing_unless_its_fixtures_are_used(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", "def test_plain():\n    assert 1 + 1 == 2\n")
    done = run_pytest(project, f"--basetemp={tmp_path / 'basetemp'}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not list((tmp_path / "basetemp").glob("jobqueue-redis*"))
    # ... and yet the plugin was loaded there, from its entry point alone.
    listed = run_pytest(project, "--fixtures")
    assert "jobqueue_redis_url" in listed.stdout and "run_until_idle" in listed.stdout


def test_tests_are_isolated_and_hostile_payloads_round_trip(tmp_path: Path) -> None:
    tests = """
import redis


def test_first_leaves_keys_behind(jobqueue_app, run_until_idle):
    value = {"deep": [[[[1]]]], "big": 10**30, "text": "\\u00e9\\u2603"}
    handle = jobqueue_app.registry["echo"].enqueue(value)
    assert run_until_idle().succeeded == 1
    assert handle.result(timeout=1) == value


def test_second_sees_an_empty_redis(jobqueue_redis_url):
    client = redis.Redis.from_url(jobqueue_redis_url)
    assert client.dbsize() == 0
    client.close()

"""
    done = run_pytest(write_project(tmp_path / "p", tests))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_a_project_without_the_ini_option_gets_one_clear_error(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", "def test_uses(jobqueue_app):\n    pass\n", ini="")
    done = run_pytest(project)
    assert done.returncode != 0
    assert "set `jobqueue_app = yourmodule:app`" in done.stdout + done.stderr


def test_an_ini_option_naming_no_app_is_a_usage_error(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p", "def test_uses(jobqueue_app):\n    pass\n", ini="jobqueue_app = mytasks:nothing\n"
    )
    done = run_pytest(project)
    assert done.returncode != 0
    assert "'mytasks:nothing' is not a jobqueue App" in done.stdout + done.stderr
