"""Loads the Lua scripts (one per state transition) shipped as package data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

SCRIPT_NAMES = (
    "enqueue",
    "enqueue_many",
    "fetch",
    "promote",
    "ack",
    "fail",
    "release",
    "heartbeat",
    "recover",
    "cancel",
    "replay",
    "purge_dead",
    "watch",
    "configure",
    "schedule_update",
    "schedule_claim",
    "schedule_outcome",
    "task_metrics",
    "progress",
    "queue_state",
)


# A line ``--@include _lib`` in a script is replaced by ``lua/_lib.lua``: Redis has no module system, and
# rules shared by several transitions (workflow dependencies, dedup release) must not be copied by hand.
_INCLUDE = "--@include "


def _read(name: str) -> str:
    return resources.files("jobqueue.broker").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def _expand(name: str, seen: set[str]) -> str:
    """``name``'s text with its includes spliced in, recursively; a library already spliced into this
    script is not spliced again (its ``local function``s are in scope already)."""
    parts = []
    for line in _read(name).splitlines(keepends=True):
        if line.startswith(_INCLUDE):
            lib = line[len(_INCLUDE) :].strip()
            if lib not in seen:
                seen.add(lib)
                parts.append(_expand(lib, seen))
        else:
            parts.append(line)
    return "".join(parts)


@cache
def script_source(name: str) -> str:
    """The text of ``lua/<name>.lua`` with its includes spliced in; cached (the files never change)."""
    if name not in SCRIPT_NAMES:
        raise KeyError(name)
    return _expand(name, set())


@dataclass(frozen=True)
class ScriptCall:
    """One script invocation: which script, its KEYS and its ARGV. Built by pure code, run by a client."""

    script: str
    keys: tuple[str, ...]
    args: tuple[str | int | float, ...]
