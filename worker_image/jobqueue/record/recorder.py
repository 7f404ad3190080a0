"""``jobqueue recorder``: moves every queue's event stream from Redis into PostgreSQL.

Guarantees (see docs/record.md):

- exactly-once effect by construction: streams are read with plain XREAD from a position kept in
  PostgreSQL (``record_positions``), saved in the same transaction as the rows of the batch that
  reached it; a recorder that dies anywhere resumes from the committed position. The (stream, entry id)
  key of the record stays a second guard: a replay changes nothing;
- PostgreSQL down: the batch in hand is retried with capped exponential backoff, nothing more is read, and
  new events wait in Redis (up to the stream's MAXLEN, ``JOBQUEUE_EVENTS_MAX_LENGTH``);
- several recorders may run: each stream is owned by one of them at a time (a session advisory lock,
  record/ownership.py), the streams spread evenly; the streams of a recorder that died are released with
  its PostgreSQL session and taken over by the others at their next discovery (which streams it owns
  is record/stream_balancing.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import redis
from psycopg_pool import ConnectionPool

from jobqueue.broker.redis_io import connect, is_cluster, translate_errors
from jobqueue.errors import JobQueueError, RecordUnavailable
from jobqueue.keys import GlobalKeys
from jobqueue.record.cluster_reads import read_each_stream
from jobqueue.record.db import translate_errors as pg_errors
from jobqueue.record.events import (
    Entry,
    ScheduleRunEvent,
    StreamEvent,
    entries_from_reply,
    parse_entry,
    parse_schedule_entry,
)
from jobqueue.record.gc_tuning import tune_garbage_collector
from jobqueue.record.ownership import StreamOwnership
from jobqueue.record.poison import Parsed, insert_reject, write_or_park
from jobqueue.record.positions import Position
from jobqueue.record.read_ahead import ReadAhead
from jobqueue.record.recorder_stats import RecorderStats
from jobqueue.record.settings import RecordSettings
from jobqueue.record.stream_balancing import StreamBalancing
from jobqueue.record.stream_reads import publish_positions
from jobqueue.record.writer import BatchResult, save_positions, write_batch
from jobqueue.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["Entry", "Recorder", "RecorderStats", "tune_garbage_collector"]


def default_consumer_name(settings: Settings) -> str:
    """The recorder's name in logs: the pod name in Kubernetes, else host-pid."""
    return settings.pod_name or f"{socket.gethostname()}-{os.getpid()}"


class Recorder(StreamBalancing):
    """Reads the event streams it owns and records them; one thread, one loop."""

    def __init__(
        self,
        settings: Settings,
        record_settings: RecordSettings,
        redis_conn: redis.Redis,
        pool: ConnectionPool,
        *,
        consumer: str | None = None,
        periodic: list[tuple[float, Callable[[], object]]] | None = None,
    ) -> None:
        self.settings = settings
        self.options = record_settings
        self.redis = redis_conn
        # XREAD replies left unparsed for entries_from_reply (self.redis keeps redis-py's parsing);
        # on Cluster a client of its own, read stream by stream (record/cluster_reads.py).
        self._per_stream = is_cluster(redis_conn)
        self._unparsed_redis = (
            connect(settings) if self._per_stream else redis.Redis(connection_pool=redis_conn.connection_pool)
        )
        self._unparsed_redis.set_response_callback("XREAD", _unparsed)
        self.pool = pool
        self.consumer = consumer or default_consumer_name(settings)
        self.stats = RecorderStats()
        self._stop = threading.Event()
        self._ownership = StreamOwnership(pool.conninfo, settings.key_prefix, self.consumer)
        self._queues: dict[str, str] = {}  # every known stream -> queue ('' for the schedule run stream)
        self._owned: dict[str, Position] = {}  # the streams this recorder owns -> their committed position
        self._schedule_stream = GlobalKeys(settings.key_prefix).schedule_events
        self._positions_key = GlobalKeys(settings.key_prefix).record_positions
        self._next_discover = 0.0
        self._read_ahead = ReadAhead()
        self._saved_with_batch = False  # the batch's positions went with its (unbisected) write
        self._batch_size = 0
        self._batch_positions: list[Position] = []
        # Entries per stream asked of the next XREAD: batch_size, doubled while reads come back full.
        self._count = record_settings.batch_size
        self._full = False  # the last read of new entries filled its count (the recorder is behind)
        # (interval, job) pairs run between batches: worker snapshots, rollups, retention.
        self._periodic = [(interval, job, [0.0]) for interval, job in (periodic or [])]

    # -- lifecycle -------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish its current step and return (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stop.is_set()

    @property
    def owned_streams(self) -> list[str]:
        """The streams this recorder owns now."""
        return sorted(self._owned)

    def close(self) -> None:
        """Give every stream up (the PostgreSQL session that holds them ends)."""
        self._read_ahead.close()
        self._owned.clear()
        self._ownership.close()

    def run(self) -> None:
        """Record until stop(); Redis and PostgreSQL outages are waited out, never fatal."""
        log.info("recorder %s started", self.consumer)
        delay = self.options.retry_initial_seconds
        try:
            while not self._stop.is_set():
                try:
                    handled = self.run_once()
                    delay = self.options.retry_initial_seconds
                    if handled and not self._full:
                        # A partial batch: let events accumulate a moment, so a busy system is recorded
                        # in fewer, larger transactions (one WAL flush each) instead of many small ones.
                        self._stop.wait(self.options.linger_ms / 1000)
                except JobQueueError as exc:
                    if isinstance(exc, RecordUnavailable):
                        # PostgreSQL down while taking streams: no stream is owned, nothing is read.
                        self.stats.write_retries += 1
                    log.warning("recorder step failed, retrying in %.1fs: %s", delay, exc)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.options.retry_max_seconds)
                except Exception:
                    # A bug, not an outage; but a daemon that dies on one odd entry records nothing
                    # more. Nothing is lost: positions only move with a commit, the step is tried again.
                    log.exception("recorder step failed unexpectedly, retrying in %.1fs", delay)
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.options.retry_max_seconds)
        finally:
            self.close()
        log.info("recorder %s stopped: %s", self.consumer, self.stats)

    def run_once(self, block: bool = True) -> int:
        """One step: discover queues and take or give up streams, read one batch from the committed
        positions, record it with the new positions. Returns the entries handled (0: nothing new)."""
        self._discover()
        entries, positions = self._read_new(block)
        handled = 0
        if entries and self._record(entries, positions):
            handled = len(entries)
        self._run_periodic()
        return handled

    # -- Redis side ------------------------------------------------------------------------------------

    def _read_new(self, block: bool) -> tuple[list[Entry], list[Position]]:
        """The entries after each owned stream's position, and the positions they lead to."""
        if not self._owned:
            if block:
                self._stop.wait(min(1.0, self.options.block_ms / 1000))
            return [], []
        ahead = self._read_ahead.take(self._owned)
        if ahead is not None:
            reply, entries = ahead
            self.stats.read_ahead += 1
        else:
            reply = self._xread(self._count, self.options.block_ms if block else None)
            entries = entries_from_reply(reply)
        positions = []
        for stream, items in reply or ():
            if items:
                old = self._owned[stream]
                consumed = None if old.consumed is None else old.consumed + len(items)
                positions.append(Position(stream, items[-1][0], consumed))
        self._full = any(len(items) >= self._count for _, items in reply or [])
        self._count = (
            min(self._count * 2, max(self.options.max_batch_size, self.options.batch_size))
            if self._full
            else self.options.batch_size
        )
        if self._full:
            # Behind: the next batch is certainly there; read it while this one is written.
            after = {s: p.entry_id for s, p in self._owned.items()}
            after.update((p.stream, p.entry_id) for p in positions)
            self._read_ahead.start(self._xread_after, after, self._count)
        return entries, positions

    def _xread(self, count: int, block_ms: int | None = None) -> Any:
        """One XREAD over every owned stream from its position, its reply left unparsed for
        entries_from_reply (on Redis Cluster one call per stream)."""
        return self._xread_after({s: p.entry_id for s, p in self._owned.items()}, count, block_ms)

    def _xread_after(self, positions: Mapping[str, str], count: int, block_ms: int | None = None) -> Any:
        wait: list[object] = ["BLOCK", block_ms] if block_ms is not None else []
        streams = list(positions)
        after = [positions[s] for s in streams]
        with translate_errors():
            if self._per_stream:
                return read_each_stream(
                    self._unparsed_redis, list(zip(streams, after, strict=True)),
                    count=count, block_ms=block_ms, stop=self._stop,
                )  # fmt: skip
            return self._unparsed_redis.execute_command(
                "XREAD", "COUNT", count, *wait, "STREAMS", *streams, *after
            )

    def _publish(self, positions: Sequence[Position]) -> None:
        try:
            publish_positions(self.redis, self._positions_key, positions)
        except JobQueueError as exc:
            log.warning("could not publish the record's positions to Redis: %s", exc)

    # -- PostgreSQL side -------------------------------------------------------------------------------

    def _record(self, entries: list[Entry], positions: list[Position]) -> bool:
        """Write the batch and the positions it leads to, retrying with backoff while PostgreSQL is
        unavailable, parking the entries it refuses (record/poison.py); False if stopped first, or if
        every stream of the batch was lost to another recorder meanwhile."""
        parsed: list[Parsed] = []
        for stream, entry_id, fields in entries:
            if fields is None:
                self.stats.trimmed += 1
                continue
            item: StreamEvent | ScheduleRunEvent | None
            if stream == self._schedule_stream:
                item = parse_schedule_entry(stream, entry_id, fields)
            else:
                item = parse_entry(stream, self._queues.get(stream, ""), entry_id, fields)
            if item is not None:
                parsed.append(Parsed(stream, entry_id, fields, item))
        delay = self.options.retry_initial_seconds
        while True:
            try:
                if not self._ownership.connected:
                    # A new session: its locks are taken again, or the streams belong to another now.
                    parsed, positions = self._still_owned(parsed, positions)
                    if not positions:
                        return False
                self._batch_size, self._batch_positions = len(parsed), positions
                self._saved_with_batch = False
                result = write_or_park(self._write, self._park, parsed)
                if not self._saved_with_batch:
                    # The batch was bisected (or held nothing to write): every entry is committed or
                    # parked by now, so the positions can move past them all.
                    with pg_errors():
                        save_positions(self._ownership.session(), positions)
                break
            except JobQueueError as exc:
                # No position moved, so nothing is lost: the same batch is tried again.
                self.stats.write_retries += 1
                if isinstance(exc, RecordUnavailable):
                    self._ownership.lost()
                level = logging.WARNING if isinstance(exc, RecordUnavailable) else logging.ERROR
                log.log(level, "recording %d events failed, retrying in %.1fs: %s", len(parsed), delay, exc)
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, self.options.retry_max_seconds)
        for position in positions:
            self._owned[position.stream] = position
        self._publish(positions)
        self.stats.batches += 1
        self.stats.recorded += result.inserted
        self.stats.duplicates += result.duplicates
        return True

    def _write(self, events: Sequence[StreamEvent], runs: Sequence[ScheduleRunEvent]) -> BatchResult:
        # On the session that holds the streams' locks: if it died, so did the right to commit.
        whole = len(events) + len(runs) == self._batch_size
        with pg_errors():
            result = write_batch(
                self._ownership.session(), events, runs, self._batch_positions if whole else ()
            )
        self._saved_with_batch = self._saved_with_batch or whole
        return result

    def _park(self, parsed: Parsed, reason: str) -> None:
        """Park one entry PostgreSQL refused, count it (Redis, read by /metrics) and log it (without its
        payload). RecordUnavailable propagates: the batch is retried, parking is idempotent."""
        with pg_errors(), self.pool.connection() as conn:
            new = insert_reject(conn, parsed, reason)
        log.error("parked entry %s of %s in record_rejects: %s", parsed.entry_id, parsed.stream, reason[:200])
        if not new:
            return
        self.stats.rejected += 1
        try:
            with translate_errors():
                self.redis.incr(GlobalKeys(self.settings.key_prefix).record_rejects)
        except JobQueueError as exc:
            log.warning("could not count a parked entry in Redis: %s", exc)

    def _run_periodic(self) -> None:
        now = time.monotonic()
        for interval, job, next_run in self._periodic:
            if now < next_run[0]:
                continue
            next_run[0] = now + interval
            try:
                job()
            except JobQueueError as exc:
                log.warning("periodic job %s failed: %s", getattr(job, "__name__", job), exc)
            except Exception:
                # One broken job must not keep the others (or the recording itself) from running.
                log.exception("periodic job %s failed unexpectedly", getattr(job, "__name__", job))


def _unparsed(response: Any, **options: Any) -> Any:
    return response
