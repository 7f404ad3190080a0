"""Rules of the layering that import contracts cannot see: which modules may run a Lua script by name, and
that the API reaches Redis only through the broker. (The import arrows themselves are import-linter
contracts in pyproject.toml; the last test runs them.)"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "worker_image" / "jobqueue"
BROKER = PACKAGE / "broker"
API = ROOT / "api" / "jobqueue_api"
OPERATOR = ROOT / "operator" / "jobqueue_operator"

# Building a ScriptCall names a script; script_source / script_sha load one by name; the rest are the
# driver's own ways to run Lua. Outside the broker, code calls the broker's typed wrappers instead.
SCRIPT_CALLERS = frozenset(
    {"ScriptCall", "script_source", "script_sha",
     "eval", "evalsha", "eval_ro", "evalsha_ro", "register_script", "script_load", "fcall"}
)  # fmt: skip


def _modules(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*.py"))


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def script_calls(source: str) -> list[tuple[int, str]]:
    """(line, name) of every call in ``source`` that runs or loads a Lua script by name."""
    return [
        (node.lineno, name)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and (name := _called_name(node)) in SCRIPT_CALLERS
    ]


def redis_attribute_uses(source: str) -> list[int]:
    """Lines that reach through a client to its Redis connection (``client.redis``)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "redis"
    ]


def test_the_rules_see_what_they_look_for() -> None:
    """The detectors themselves, on the shapes the old code had."""
    assert script_calls('run_script(r, ScriptCall("watch", (k,), ()))') == [(1, "ScriptCall")]
    found = script_calls("conn.evalsha(sha, 1, key)\nscript_source('fetch')")
    assert found == [(1, "evalsha"), (2, "script_source")]
    assert script_calls("def f() -> ScriptCall: return build_ack(s, done)") == []
    assert redis_attribute_uses("pipe = client.redis.pipeline(transaction=False)") == [1]
    assert redis_attribute_uses("import redis\nx = client.queue_depth(q)") == []


@pytest.mark.parametrize(
    "path",
    [p for p in _modules(PACKAGE, API, OPERATOR) if BROKER not in p.parents],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_only_the_broker_calls_a_script_by_name(path: Path) -> None:
    """Every Lua script has one typed wrapper, in jobqueue/broker/ (docs/design.md lists them)."""
    found = script_calls(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)} runs scripts by name at {found}: call a broker wrapper"


@pytest.mark.parametrize("path", _modules(API), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_api_reaches_redis_only_through_the_broker(path: Path) -> None:
    """No raw pipelines in routes: reads and writes are typed broker calls (e.g. broker/live_state.py)."""
    lines = redis_attribute_uses(path.read_text(encoding="utf-8"))
    assert not lines, f"{path.relative_to(ROOT)} uses a client's Redis connection at lines {lines}"


def test_import_contracts_are_kept() -> None:
    """The layer contracts of pyproject.toml ([tool.importlinter]), as `make lint` checks them."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports is not None, "import-linter is in the dev extra: make deps installs it"
    command = [lint_imports, "--no-logo", "--no-cache"]
    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stdout[-4000:]
