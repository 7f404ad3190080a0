"""docs/benchmarks.md stays navigable as it is regenerated and reorganised: every in-page link and every
link into it from the other docs names a heading that exists, every table a bench step writes has its
pair of markers exactly once, and no heading names a branch or a session (those belong in the text of
the appendix, not in anchors other pages link to)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGE = DOCS / "benchmarks.md"


def _outside_code(text: str) -> list[str]:
    """The page's lines outside fenced code blocks (a ``# comment`` in a shell block is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor; a repeated heading gets ``-1``, ``-2``... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for line in _outside_code(text):
        if match := re.match(r"#{1,6} (.+)", line):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            out.add(base if count == 0 else f"{base}-{count}")
            seen[base] = count + 1
    return out


def test_the_slug_follows_githubs_rules() -> None:
    assert (
        slug("Worker processes: `jobqueue worker --processes 2`")
        == "worker-processes-jobqueue-worker---processes-2"
    )
    assert slug("The record's cost") == "the-records-cost"
    assert slug("I/O-bound tasks") == "io-bound-tasks"
    assert anchors("# A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1"}


def test_every_in_page_link_names_a_heading_of_the_page() -> None:
    text = PAGE.read_text()
    targets = set(re.findall(r"\]\(#([^)\s]+)\)", "\n".join(_outside_code(text))))
    assert targets, "the page links to its sections"
    assert sorted(targets - anchors(text)) == []


def test_every_link_from_the_other_docs_into_the_page_names_a_heading() -> None:
    page_anchors = anchors(PAGE.read_text())
    sources = [*DOCS.glob("*.md"), ROOT / "README.md"]
    broken = [
        f"{path.name}: #{target}"
        for path in sources
        for target in re.findall(r"benchmarks\.md#([^)\s]+)\)", path.read_text())
        if target not in page_anchors
    ]
    assert broken == []


def test_every_table_a_bench_step_writes_has_its_markers_once_in_order() -> None:
    text = PAGE.read_text()
    names = set()
    for module in (ROOT / "bench").glob("*.py"):
        names |= set(re.findall(r"<!-- bench:([a-z-]+):start -->", module.read_text()))
    assert {"summary", "steps", "results", "cold-start", "cpu-bound", "concurrent", "queue-scale"} <= names
    for name in sorted(names):
        start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
        assert text.count(start) == 1 and text.count(end) == 1, name
        assert text.index(start) < text.index(end), name


def test_no_heading_names_a_branch_or_a_session() -> None:
    headings = [line for line in _outside_code(PAGE.read_text()) if line.startswith("#")]
    assert [h for h in headings if re.search(r"\bsession \d|\bbranch\b", h, re.IGNORECASE)] == []


def test_the_summary_comes_first_and_the_history_last() -> None:
    sections = [line[3:] for line in _outside_code(PAGE.read_text()) if line.startswith("## ")]
    assert sections[:3] == ["Summary", "How to run", "What is measured"]
    assert sections[-1] == "Appendix: development history"


def test_how_to_run_lists_every_step_of_make_bench_in_its_order() -> None:
    recipe = (ROOT / "Makefile").read_text().partition("\nbench: deps\n")[2].split("\n\n")[0]
    steps = []
    for line in recipe.splitlines():
        command = re.sub(r"^\t(\$\(BENCH_STEP\) )?\$\(PY\) -m ", "python -m ", line)
        steps.append(re.sub(r" \$\([A-Z_]+\)", "", command))
    assert steps[0] == "python -m bench" and steps[-1] == "python -m bench.summary"
    how_to_run = PAGE.read_text().partition("## How to run")[2].partition("\n## ")[0]
    where = [how_to_run.find(f"`{step}`") for step in steps]
    assert [s for s, at in zip(steps, where, strict=True) if at < 0] == []
    assert where == sorted(where)
