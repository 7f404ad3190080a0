"""How far the recorders are behind, read from Redis: each stream's recorded position against its entries.

The recorders keep each event stream's position in PostgreSQL (``record_positions``, committed with the
rows) and mirror it after each batch into one Redis hash (``GlobalKeys.record_positions``, field = stream,
value = ``"<entry id> <entries consumed>"``). Read from Redis, so it holds for any number of recorders and
for none that is alive: a stopped recorder cannot report its own lag, but its streams still show it.

- lag: age of the oldest event not yet recorded, the first entry after the stream's position (a stream
  with no position yet: its first entry). Stream entry ids start with the Redis server time in ms,
  compared with Redis TIME (one clock).
- recorded: entries the positions passed, summed; unknown (None) when a position was carried over from the
  consumer group of older recorders with entries pending (then /metrics leaves the counter out rather
  than report a number that is not true).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobqueue.broker.client import Client
from jobqueue.broker.redis_io import translate_errors
from jobqueue.keys import GlobalKeys


@dataclass(frozen=True)
class RecorderProgress:
    """Cluster-wide: the worst lag over every stream, and the events recorded from all of them."""

    lag_seconds: float
    recorded: int | None  # None: not countable (see the module docstring)


def entry_ms(entry_id: str) -> int:
    """The millisecond timestamp of a stream entry id (``<ms>-<seq>``)."""
    return int(entry_id.partition("-")[0])


def parse_position(value: str | None) -> tuple[str, int | None] | None:
    """A mirrored position ``"<entry id> <consumed>"`` (consumed may be empty: unknown); None if absent."""
    if not value:
        return None
    entry_id, _, consumed = value.partition(" ")
    return entry_id, int(consumed) if consumed.strip() else None


def stream_lag(first_unrecorded: str | None, now_ms: int) -> float:
    """Seconds since the oldest entry not recorded yet was appended (0 when there is none; never
    negative, whatever the clock of the server that stamped it)."""
    if not first_unrecorded:
        return 0.0
    return max(0.0, (now_ms - entry_ms(first_unrecorded)) / 1000)


def read_recorder_progress(client: Client, queues: Sequence[str]) -> RecorderProgress | None:
    """Progress of the recorders over the event streams of ``queues``; None when no stream has been
    recorded yet (no recorder has run)."""
    streams = [client.queue_keys(q).events for q in queues]
    if not streams:
        return None
    with translate_errors():
        conn = client.redis
        stored = conn.hmget(GlobalKeys(client.settings.key_prefix).record_positions, streams)
        positions = [parse_position(v.decode() if isinstance(v, bytes) else v) for v in stored]
        if all(p is None for p in positions):
            return None
        seconds, micros = conn.time()
        pipe = conn.pipeline(transaction=False)
        for stream, position in zip(streams, positions, strict=True):
            pipe.xrange(stream, min=f"({position[0]}" if position else "-", count=1)
        firsts = pipe.execute()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    worst, total, counted = 0.0, 0, True
    for position, first in zip(positions, firsts, strict=True):
        worst = max(worst, stream_lag(first[0][0] if first else None, now_ms))
        if position is not None:
            if position[1] is None:
                counted = False
            else:
                total += position[1]
    return RecorderProgress(worst, total if counted else None)


def read_record_rejects(client: Client) -> int:
    """Stream entries the recorders parked in PostgreSQL's record_rejects table (a counter they add to in
    Redis after each park, so every API replica reports the same cluster-wide total)."""
    with translate_errors():
        count = client.redis.get(GlobalKeys(client.settings.key_prefix).record_rejects)
    return int(count or 0)
