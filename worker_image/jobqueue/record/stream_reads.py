"""What the recorder asks Redis besides the entries: where the consumer group of the recorders of before
stood (the migration), how many entries MAXLEN trimmed before they were recorded; and what it tells
Redis: the positions it committed, for /metrics."""

from __future__ import annotations

import logging
from collections.abc import Sequence
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


def publish_positions(conn: redis.Redis, key: str, positions: Sequence[Position]) -> None:
    """Mirror committed positions into the hash ``key`` (stream -> "<entry id> <consumed>", consumed
    empty when unknown) for /metrics (broker/recorder_progress.py), so the record's lag is read from
    Redis alone. PostgreSQL stays the truth: a mirror that failed is corrected by the next batch."""
    mapping = {p.stream: f"{p.entry_id} {'' if p.consumed is None else p.consumed}" for p in positions}
    if mapping:
        with translate_errors():
            conn.hset(key, mapping=mapping)
