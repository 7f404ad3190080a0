"""The recorder's read of new events on Redis Cluster: stream by stream.

On one Redis the recorder reads every event stream it owns in one blocking XREAD. Each queue's stream
is its own hash slot (the key carries ``{queue}``), and Redis Cluster refuses one command over keys of
several slots, so there each stream gets its own non-blocking XREAD, and when none had anything new
the recorder waits its block time before the next round. The XREADs of one round are grouped by the
primary serving their stream's slot, found from the client's slot map, and each group is one pipeline
to that node (broker/cluster_replica_wait.py, without its WAIT): a round costs one round trip per
primary, not per stream. A stream whose slot moved (failover, resharding) answers MOVED or ASK without
having run; it is read again from its new owner in the same round. The recorder is off the hot path
(it batches into PostgreSQL); idle, it adds up to the block time of recording lag.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from jobqueue.broker.cluster_replica_wait import ClusterReplicaWait, RoutedCall


def read_each_stream(
    conn: Any,
    positions: Sequence[tuple[str, str]],
    *,
    count: int,
    block_ms: int | None,
    stop: threading.Event,
) -> list[Any] | None:
    """XREAD's unparsed reply (``[[stream, entries], ...]``, None when empty) merged over the
    ``(stream, after id)`` pairs, each read alone (its slot's primary); waits ``block_ms`` (or until
    ``stop``) when all were empty."""
    reply: list[Any] = []
    reads = [
        RoutedCall(("XREAD", "COUNT", count, "STREAMS", stream, after), stream) for stream, after in positions
    ]
    parts, _ = ClusterReplicaWait(conn).run(reads, None)
    for part in parts:
        if isinstance(part, Exception):
            raise part  # e.g. TRYAGAIN during a resharding
        for stream_name, items in part or ():
            reply.append([stream_name, [_flat(entry_id, fields) for entry_id, fields in items]])
    if not reply and block_ms:
        stop.wait(block_ms / 1000)
    return reply or None


def _flat(entry_id: str, fields: Any) -> list[Any]:
    """An entry in the unparsed form entries_from_reply reads: RedisCluster applies redis-py's XREAD
    parsing (a dict of fields) whatever callback is set, so a dict is flattened back to [k, v, ...]."""
    if isinstance(fields, dict):
        return [entry_id, [x for pair in fields.items() for x in pair]]
    return [entry_id, fields]
