"""What the recorder asks a stream besides its entries: where the consumer group of the recorders of
before stood (the migration), and how many entries MAXLEN trimmed before they were recorded."""

from __future__ import annotations

import logging
from typing import Any

import redis

from jobqueue.broker.redis_io import translate_errors
from jobqueue.record.positions import START, Position, group_start, trimmed_unread

log = logging.getLogger(__name__)


def start_without_position(conn: redis.Redis, stream: str, group_name: str) -> Position:
    """A stream no recorder of the position protocol recorded yet: from the consumer group of the
    recorders of before if it has one (positions.group_start), else from the start. Replays are
    harmless (the record's (stream, entry id) key), so erring early is safe."""
    with translate_errors():
        try:
            groups: list[dict[str, Any]] = conn.xinfo_groups(stream)
        except redis.ResponseError:
            groups = []  # no stream yet
        group = next((g for g in groups if g["name"] == group_name), None)
        oldest = None
        if group is not None and int(group.get("pending") or 0):
            oldest = conn.xpending(stream, group_name).get("min")
    start = group_start(group, oldest)
    if start is None:
        return Position(stream, START, 0)
    log.info("stream %s continues the consumer group %s after %s", stream, group_name, start.entry_id)
    return Position(stream, start.entry_id, start.consumed)


def trimmed_before_recorded(conn: redis.Redis, position: Position) -> int:
    """Entries of ``position``'s stream trimmed (MAXLEN) after its position, never to be recorded."""
    with translate_errors():
        try:
            info = conn.xinfo_stream(position.stream)
        except redis.ResponseError:
            return 0  # no such stream (yet)
    first = info.get("first-entry")
    added = info.get("entries-added")
    return trimmed_unread(position, first[0] if first else None, added, int(info["length"]))
