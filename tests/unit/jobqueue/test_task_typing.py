"""Task typing for callers, proven by mypy itself: ``add.enqueue(1, 2).result()`` is an ``int``, a
``bind=True`` task is enqueued without its context, and wrong calls are errors (typing_cases/)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "typing_cases"
ROOT = Path(__file__).parents[3]
MESSAGE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")
EXPECT = re.compile(r"#\s*expect:\s*(?P<text>.+)$")


def expectations(path: Path) -> dict[int, str]:
    return {
        number: match["text"].strip()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if (match := EXPECT.search(line))
    }


@pytest.mark.timeout(300)  # mypy reads jobqueue and its dependencies' stubs: slow on a loaded machine
def test_task_types_as_callers_see_them(tmp_path: Path) -> None:
    case = CASES / "task_types.py"
    # In a child process: mypy's API raises the interpreter's recursion limit for good, which changes how
    # deep json.loads goes in every later test of this process.
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--show-error-codes",
            "--hide-error-context",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--python-version",
            "3.11",
            str(case),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    stdout, stderr = completed.stdout, completed.stderr
    assert not stderr, stderr
    found: dict[int, list[str]] = {}
    for line in stdout.splitlines():
        match = MESSAGE.match(line)
        assert match, f"unparsed mypy output: {line}"
        assert Path(match["file"]).name == case.name, line
        # mypy 1.x names builtins "builtins.int", 2.x "int": the cases are written without the prefix.
        found.setdefault(int(match["line"]), []).append(match["text"].replace("builtins.", ""))
    expected = expectations(case)
    assert len(expected) >= 15  # the cases file was read (its clean lines are checked by absence below)
    unexpected = {n: texts for n, texts in found.items() if n not in expected}
    assert not unexpected, f"mypy complained about lines that should be clean: {unexpected}"
    for number, text in expected.items():
        assert any(text in message for message in found.get(number, [])), (
            f"line {number}: expected a message with {text!r}, got {found.get(number)}"
        )
