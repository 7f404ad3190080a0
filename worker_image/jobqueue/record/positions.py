"""The recorder's stream positions: pure decisions, no I/O.

A position is the id of the last entry of a stream whose effect is committed in PostgreSQL (XREAD reads
the entries after it). It is stored in ``record_positions`` in the same transaction as the rows, so a
recorder that dies anywhere resumes exactly where the record stands (docs/record.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

START = "0-0"
_MAX_SEQ = 2**64 - 1


@dataclass(frozen=True)
class Position:
    """Where one stream is recorded up to, and the entries passed since the stream began (None when
    unknown: a position carried over from a consumer group that had entries pending)."""

    stream: str
    entry_id: str
    consumed: int | None


def entry_key(entry_id: str) -> tuple[int, int]:
    """An entry id (``<ms>-<seq>``, or ``<ms>``) as a tuple that sorts as Redis orders entries."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def entry_before(entry_id: str) -> str:
    """The greatest id below ``entry_id``: XREAD after it returns ``entry_id`` itself first."""
    ms, seq = entry_key(entry_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{_MAX_SEQ}" if ms > 0 else START


def group_start(group: Mapping[str, Any] | None, oldest_pending: str | None) -> Position | None:
    """Where a stream that has no stored position starts, from the consumer group of the recorders of
    before (the migration from the group protocol): just before its oldest pending entry (delivered,
    perhaps never recorded), else its last-delivered id. None without a group: from the start.

    ``consumed`` carries the group's entries-read over only when nothing was pending (exact then)."""
    if group is None:
        return None
    last = str(group.get("last-delivered-id") or START)
    if oldest_pending is not None:
        return Position("", entry_before(oldest_pending), None)
    read = group.get("entries-read")
    return Position("", last, int(read) if read is not None else (0 if last == START else None))


def trimmed_unread(
    position: Position, first_entry: str | None, entries_added: int | None, length: int
) -> int:
    """Entries MAXLEN trimmed from a stream before they were recorded: every entry ever added is either
    passed by the position, still in the stream, or lost. Only countable when the stream no longer
    holds the position's entry (its first entry is later) and both totals are known."""
    if position.consumed is None or entries_added is None or first_entry is None:
        return 0
    if entry_key(first_entry) <= entry_key(position.entry_id):
        return 0
    return max(0, entries_added - length - position.consumed)


def fair_share(streams: int, recorders: int) -> int:
    """How many streams one of ``recorders`` live recorders owns: the streams spread evenly."""
    return math.ceil(streams / max(1, recorders))
