"""Status conditions (the Kubernetes ``metav1.Condition`` shape), merged purely.

A condition keeps its ``lastTransitionTime`` while its status stays the same, so `kubectl describe` shows
since when a resource has been Ready rather than when the operator last looked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Condition:
    """One condition to set: ``status`` is "True", "False" or "Unknown"; ``reason`` is CamelCase."""

    type: str
    status: str
    reason: str
    message: str = ""


def rfc3339(moment: dt.datetime) -> str:
    """A UTC timestamp as Kubernetes writes them (second precision, trailing Z)."""
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    existing: Sequence[Mapping[str, Any]] | None,
    updates: Iterable[Condition],
    generation: int,
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """``existing`` with ``updates`` applied (other condition types are kept as they are)."""
    merged = {str(c.get("type")): dict(c) for c in existing or () if c.get("type")}
    for update in updates:
        before = merged.get(update.type) or {}
        changed = before.get("status") != update.status
        merged[update.type] = {
            "type": update.type,
            "status": update.status,
            "reason": update.reason,
            "message": update.message,
            "observedGeneration": generation,
            "lastTransitionTime": rfc3339(now) if changed else str(before.get("lastTransitionTime")),
        }
    return [merged[key] for key in sorted(merged)]


def ready(ok: bool, reason: str, message: str = "") -> Condition:
    """The Ready condition."""
    return Condition("Ready", "True" if ok else "False", reason, message)


def flag(kind: str, on: bool, reason: str, message: str = "") -> Condition:
    """A boolean condition such as Paused or Draining."""
    return Condition(kind, "True" if on else "False", reason, message)
