"""Loads the Lua scripts (one per state transition) shipped as package data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

SCRIPT_NAMES = (
    "enqueue",
    "fetch",
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
)


@cache
def script_source(name: str) -> str:
    """The text of ``lua/<name>.lua``; cached because the files never change while running."""
    if name not in SCRIPT_NAMES:
        raise KeyError(name)
    return resources.files("jobqueue").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class ScriptCall:
    """One script invocation: which script, its KEYS and its ARGV. Built by pure code, run by a client."""

    script: str
    keys: tuple[str, ...]
    args: tuple[str | int | float, ...]
