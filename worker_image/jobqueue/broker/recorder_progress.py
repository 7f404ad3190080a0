"""How far the recorders are behind, read from their consumer group on every queue's event stream.

Derived from Redis rather than reported by each recorder, so it holds for any number of recorders, and
for none that is alive: a stopped recorder cannot report its own lag, but its stream still shows it.

- lag: age of the oldest event not yet recorded, i.e. the older of the oldest entry delivered but not
  acknowledged (XPENDING) and the first entry not delivered yet (after the group's last-delivered-id).
  Stream entry ids start with the Redis server time in ms, compared with Redis TIME (one clock).
- recorded: entries the group acknowledged (the recorder XACKs only after its PostgreSQL COMMIT), which is
  ``entries-read`` minus ``pending`` of XINFO GROUPS. Redis 6 does not report ``entries-read``, and Redis 7
  leaves it unset for a group it cannot count (created or moved to an arbitrary id): then the count is
  unknown (None) and /metrics leaves the counter out rather than report a 0 that is not true.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.broker.client import Client
from jobqueue.broker.raw_reads import read_many
from jobqueue.broker.redis_io import translate_errors
from jobqueue.keys import GlobalKeys


@dataclass(frozen=True)
class RecorderProgress:
    """Cluster-wide: the worst lag over every stream, and the events recorded from all of them."""

    lag_seconds: float
    recorded: int | None  # None: the Redis server cannot count it (see the module docstring)


def entry_ms(entry_id: str) -> int:
    """The millisecond timestamp of a stream entry id (``<ms>-<seq>``)."""
    return int(entry_id.partition("-")[0])


def stream_progress(
    group: dict[str, Any], oldest_pending: str | None, first_undelivered: str | None, now_ms: int
) -> tuple[float, int | None]:
    """(lag seconds, recorded entries or None if unknown) of one stream from its group's XINFO entry."""
    candidates = [entry_ms(i) for i in (oldest_pending, first_undelivered) if i]
    lag = max(0.0, (now_ms - min(candidates)) / 1000) if candidates else 0.0
    if "entries-read" not in group:
        return lag, None  # Redis 6
    read = group["entries-read"]
    if read is None:
        # Redis 7 counts from the group's first read; a group that never delivered has recorded nothing.
        return lag, 0 if group.get("last-delivered-id") == "0-0" else None
    return lag, max(0, int(read) - int(group.get("pending") or 0))


def read_recorder_progress(client: Client, queues: Sequence[str], group: str) -> RecorderProgress | None:
    """Progress of consumer group ``group`` over the event streams of ``queues``; None when no stream has
    that group."""
    streams = [client.queue_keys(q).events for q in queues]
    if not streams:
        return None
    with translate_errors():
        return _read_progress(client, streams, group)


def _read_progress(client: Client, streams: Sequence[str], group: str) -> RecorderProgress | None:
    conn = client.redis
    # One XINFO per queue: read raw (read_many), as a scrape of 10,000 queues makes 10,000 of them.
    (seconds, micros), *infos = read_many(conn, [("TIME",), *(("XINFO", "GROUPS", s) for s in streams)])
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    found: list[tuple[str, dict[str, Any]]] = []
    for stream, info in zip(streams, infos, strict=True):
        # A stream that does not exist yet answers XINFO with an error: it has no group, so it is skipped.
        if isinstance(info, Exception):
            continue
        # Each group is a flat field, value list in the raw reply.
        entry = next(
            (d for g in info if (d := dict(zip(g[::2], g[1::2], strict=True))).get("name") == group), None
        )
        if entry is not None:
            found.append((stream, entry))
    if not found:
        return None
    pipe = conn.pipeline(transaction=False)
    for stream, entry in found:
        pipe.xpending(stream, group)
        pipe.xrange(stream, min=f"({entry['last-delivered-id']}", count=1)
    replies = pipe.execute()
    worst, total = 0.0, 0
    counted = True
    for i, (_, entry) in enumerate(found):
        pending, undelivered = replies[2 * i], replies[2 * i + 1]
        oldest_pending = pending.get("min") if pending and pending.get("pending") else None
        first_undelivered = undelivered[0][0] if undelivered else None
        lag, recorded = stream_progress(entry, oldest_pending, first_undelivered, now_ms)
        worst = max(worst, lag)
        if recorded is None:
            counted = False
        else:
            total += recorded
    return RecorderProgress(worst, total if counted else None)


def read_record_rejects(client: Client) -> int:
    """Stream entries the recorders parked in PostgreSQL's record_rejects table (a counter they add to in
    Redis after each park, so every API replica reports the same cluster-wide total)."""
    with translate_errors():
        count = client.redis.get(GlobalKeys(client.settings.key_prefix).record_rejects)
    return int(count or 0)
