"""Every Lua script documents its interface in its header comment, the way redis-py's lock.py does:

    --[[ name: what the transition does.
    KEYS[1] ...   KEYS[2] ...
    ARGV[1] ...   ARGV[3 .. 2+S] ...   (a tail: entries from 3 on, however many)
    Returns ... ]]

The wrappers in jobqueue/broker/ are written against these headers, so a script that reads a KEYS or ARGV
entry its header does not describe (or a header that describes one no script reads) misleads whoever
writes or reviews the wrapper.
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from jobqueue.broker.scripts import SCRIPT_NAMES

pytestmark = pytest.mark.timeout(10)

HEADER = re.compile(r"\A--\[\[(?P<header>.*?)\]\]", re.DOTALL)
LITERAL = re.compile(r"\b(KEYS|ARGV)\[(\d+)\]")
# Open-ended entries: ``KEYS[2..]``, ``ARGV[3 .. 2+S]``, ``KEYS[5 + i]`` (i = 1 .. N) start a tail.
TAIL = re.compile(r"\b(KEYS|ARGV)\[\s*(\d+)\s*(?:\.\.|\+\s*[a-z])")
ANY_ACCESS = re.compile(r"\b(KEYS|ARGV)\[")

Entry = tuple[str, int]


def _lua(name: str) -> str:
    return resources.files("jobqueue.broker").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def split(source: str) -> tuple[str, str]:
    """(header comment, code after it); AssertionError when the file does not start with one."""
    match = HEADER.match(source)
    assert match, "the script must start with a --[[ ... ]] header"
    return match.group("header"), source[match.end() :]


def documented(header: str) -> tuple[set[Entry], dict[str, int]]:
    """Literal entries the header names, and per table where its tail starts (if it has one)."""
    literal = {(table, int(n)) for table, n in LITERAL.findall(header)}
    tails: dict[str, int] = {}
    for match in TAIL.finditer(header):
        table, n = match.group(1), int(match.group(2))
        start = n if ".." in match.group(0) else n + 1  # ``X[5 + i]`` counts i from 1
        tails[table] = min(tails.get(table, start), start)
    return literal, tails


def used(code: str) -> set[Entry]:
    """Literal entries the code reads."""
    return {(table, int(n)) for table, n in LITERAL.findall(code)}


def undocumented(source: str) -> set[Entry]:
    """Entries the code reads that the header neither names nor covers with a tail."""
    header, code = split(source)
    literal, tails = documented(header)
    return {(t, n) for t, n in used(code) if (t, n) not in literal and not (t in tails and n >= tails[t])}


def unread(source: str) -> set[Entry]:
    """Entries the header names that the code never reads by number (stale documentation)."""
    header, code = split(source)
    literal, _ = documented(header)
    return literal - used(code)


def test_the_check_finds_what_it_looks_for() -> None:
    script = "--[[ s: x.\nKEYS[1] a  ARGV[1] b  ARGV[3 ..] c\nReturns 1. ]]\n"
    script += "return {KEYS[1], ARGV[1], ARGV[2], ARGV[7]}"
    assert undocumented(script) == {("ARGV", 2)}
    assert undocumented("--[[ s: x.\nKEYS[5 + i] task i\nReturns 1. ]]\nreturn KEYS[6]") == set()
    assert undocumented("--[[ s: x.\nKEYS[5 + i] task i\nReturns 1. ]]\nreturn KEYS[5]") == {("KEYS", 5)}
    assert unread("--[[ s: x.\nKEYS[1] a   KEYS[2] b\nReturns 1. ]]\nreturn KEYS[1]") == {("KEYS", 2)}


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_header_names_the_script_and_its_reply(name: str) -> None:
    header, _ = split(_lua(name))
    assert header.lstrip().startswith(f"{name}:"), f"{name}.lua's header must start with '{name}:'"
    assert "Return" in header, f"{name}.lua's header must say what it returns"


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_keys_and_argv_entry_read_is_documented(name: str) -> None:
    missing = undocumented(_lua(name))
    assert not missing, f"{name}.lua reads {sorted(missing)} without documenting them in its header"


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_documented_entry_is_read(name: str) -> None:
    stale = unread(_lua(name))
    assert not stale, f"{name}.lua's header documents {sorted(stale)}, which the script never reads"


def test_included_libraries_take_their_keys_as_arguments() -> None:
    """A library (``--@include _lib``) cannot document KEYS / ARGV for every script that includes it, so
    it never reads them: the including script passes what it needs."""
    folder = resources.files("jobqueue.broker").joinpath("lua")
    libraries = [f for f in folder.iterdir() if f.name.startswith("_") and f.name.endswith(".lua")]
    assert libraries
    for lib in libraries:
        assert not ANY_ACCESS.search(lib.read_text(encoding="utf-8")), f"{lib.name} reads KEYS or ARGV"
