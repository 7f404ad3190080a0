"""What the worker's start path, the enqueue path and ``jobqueue --help`` import: the worker's cold start
is mostly import time (docs/benchmarks.md, "Cold start"), and a web app that enqueues pays the same imports.
Each check runs a fresh interpreter, since a module imported once stays imported.

Left out of each check is what ``import redis`` imports by itself in this environment: redis-py's package
imports its asyncio client (``from redis import asyncio`` in ``redis/__init__.py``) and, from redis-py 7 on,
OpenTelemetry's metrics SDK when that is installed (the dev extra installs it; the worker image does not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jq_testing import worker_env

from jobqueue import Client, Settings

pytestmark = pytest.mark.timeout(120)

# Packages no worker, producer or `--help` needs: the record, the API, the operator, the settings library
# replaced by jobqueue/settings.py, cron (schedules only), and tracing unless the process set it up.
NEVER = (
    "psycopg",
    "psycopg_pool",
    "fastapi",
    "starlette",
    "uvicorn",
    "kubernetes",
    "kopf",
    "pydantic_settings",
    "dotenv",  # read only when there is a .env file (none in the directory these checks run in)
    "croniter",
    "opentelemetry",
    "redis.asyncio",
    "jobqueue_api",
    "jobqueue_operator",
    "jobqueue.record",
    "jobqueue.services",
    # Only asyncio producers, admin code and workflow users need these.
    "jobqueue.broker.aio",
    "jobqueue.broker.queue_admin",
    "jobqueue.broker.workflows",
    "jobqueue.schedules",
)

APP = """
import json, os, sys
from jobqueue import App

app = App()


@app.task
def report(path):
    # Runs in a child of the process pool: what the child holds once it ran a task.
    with open(path, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def modules_after(code: str, cwd: Path, env: dict[str, str] | None = None) -> set[str]:
    """sys.modules of a fresh interpreter after ``code`` (which may print first: the last line counts),
    run in ``cwd`` (a directory without a .env file)."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def forbidden(modules: set[str], baseline: set[str]) -> list[str]:
    """The modules of NEVER (or inside them) that ``import redis`` alone did not bring."""
    return sorted(
        m for m in modules - baseline if any(m == name or m.startswith(name + ".") for name in NEVER)
    )


@pytest.fixture(scope="module")
def redis_baseline(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return modules_after("import redis", tmp_path_factory.mktemp("baseline"))


def test_the_default_worker_imports_nothing_it_does_not_need(
    settings: Settings, client: Client, tmp_path: Path, redis_baseline: set[str]
) -> None:
    (tmp_path / "cold_app.py").write_text(APP)
    child_modules = tmp_path / "child.json"
    client.enqueue("report", [str(child_modules)])
    env = {**os.environ, **worker_env(settings)}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    # The real command's path (`jobqueue worker --app ...`: the default process pool) until its queue is
    # idle, then what the worker process imported on the way.
    worker = (
        "from jobqueue.cli.main import main\n"
        "code = main(['--log-level', 'WARNING', 'worker', '--app', 'cold_app:app', '--burst'])\n"
        "assert code == 0, code"
    )
    parent = modules_after(worker, tmp_path, env)
    assert "jobqueue.worker.process_pool" in parent and "jobqueue.broker.client" in parent
    assert forbidden(parent, redis_baseline) == []
    child = set(json.loads(child_modules.read_text()))
    assert "jobqueue.worker.execution" in child
    assert forbidden(child, redis_baseline) == []


def test_a_producer_imports_the_sync_client_only(tmp_path: Path, redis_baseline: set[str]) -> None:
    # What a web app pays to enqueue: no asyncio client, no settings library, no tracing it did not set up.
    modules = modules_after("import jobqueue\nclient = jobqueue.Client(jobqueue.Settings())", tmp_path)
    assert "jobqueue.broker.client" in modules
    assert forbidden(modules, redis_baseline) == []
    assert forbidden(modules_after("from jobqueue import App\nApp()", tmp_path), redis_baseline) == []


def test_the_asyncio_client_is_imported_when_it_is_used(tmp_path: Path) -> None:
    modules = modules_after("from jobqueue import App\nApp().async_client()", tmp_path)
    assert "jobqueue.broker.aio" in modules


def test_jobqueue_help_imports_no_redis_and_no_pydantic(tmp_path: Path) -> None:
    code = (
        "import contextlib, io\n"
        "from jobqueue.cli.main import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])"
    )
    modules = modules_after(code, tmp_path)
    assert {m for m in modules if m.split(".")[0] in ("redis", "pydantic", "urllib3")} == set()
    assert "jobqueue.settings" not in modules and "importlib.metadata" not in modules


GC_APP = """
import gc, json
from jobqueue import App

app = App()


@app.task
def report_gc(path):
    # Where the task runs (a pool child, or the worker process with the thread pool).
    with open(path, "w") as f:
        json.dump({"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}, f)
"""


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_what_a_worker_loads_at_start_is_frozen_out_of_garbage_collection(
    settings: Settings, client: Client, tmp_path: Path, pool: str
) -> None:
    # Loading the worker made the collector scan the same ~90,000 objects again and again (45-65 ms of a
    # ~300 ms start of CPU): it is off while they load and they are frozen afterwards (worker/startup.py).
    # The collector must be on again where tasks run: in a child forked after the freeze too.
    (tmp_path / "gc_app.py").write_text(GC_APP)
    report = tmp_path / "gc.json"
    client.enqueue("report_gc", [str(report)])
    env = {**os.environ, **worker_env(settings)}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    worker = (
        "from jobqueue.cli.main import main\n"
        f"code = main(['--log-level', 'WARNING', 'worker', '--app', 'gc_app:app', '--pool', {pool!r},"
        " '--burst'])\n"
        "assert code == 0, code"
    )
    modules_after(worker, tmp_path, env)
    seen = json.loads(report.read_text())
    assert seen["enabled"] is True
    # redis-py, pydantic and jobqueue alone are tens of thousands of objects.
    assert seen["frozen"] > 10_000, seen
