"""``jobqueue recorder``: moves every queue's event stream from Redis into PostgreSQL.

Guarantees (see docs/record.md):

- at-least-once delivery, exactly-once effect: entries are read through a consumer group and XACKed only
  after the transaction that records them has committed; a replay (crash before XACK, entries claimed by
  another recorder) is recognised by the (stream, entry id) key and changes nothing;
- PostgreSQL down: the batch in hand is retried with capped exponential backoff, nothing more is read, and
  new events wait in Redis (up to the stream's MAXLEN, ``JOBQUEUE_EVENTS_MAX_LENGTH``);
- several recorders may run: the group shares the entries out, and entries left pending by a recorder that
  died are claimed by the others after ``claim_idle_seconds``.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from psycopg_pool import ConnectionPool
from redis.exceptions import ResponseError

from jobqueue.broker.raw_reads import read_many
from jobqueue.broker.redis_io import connect, is_cluster, translate_errors
from jobqueue.errors import JobQueueError, RecordUnavailable
from jobqueue.keys import GlobalKeys, QueueKeys
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
from jobqueue.record.poison import Parsed, insert_reject, write_or_park
from jobqueue.record.settings import RecordSettings
from jobqueue.record.writer import BatchResult, write_batch
from jobqueue.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class RecorderStats:
    """Counters since start (read by tests, the benchmark and the logs)."""

    batches: int = 0
    recorded: int = 0
    duplicates: int = 0
    claimed: int = 0
    trimmed: int = 0
    write_retries: int = 0
    rejected: int = 0  # entries parked in record_rejects (record/poison.py)


def default_consumer_name(settings: Settings) -> str:
    """The pod name in Kubernetes (stable across restarts, so a restarted pod re-reads its own pending
    entries at once), else host-pid-random."""
    return settings.pod_name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Recorder:
    """Reads the event streams of every known queue and records them; one thread, one loop."""

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
        # XREADGROUP replies left unparsed for entries_from_reply (self.redis keeps redis-py's parsing);
        # on Cluster a client of its own, read stream by stream (record/cluster_reads.py).
        self._per_stream = is_cluster(redis_conn)
        self._unparsed_redis = (
            connect(settings) if self._per_stream else redis.Redis(connection_pool=redis_conn.connection_pool)
        )
        self._unparsed_redis.set_response_callback("XREADGROUP", _unparsed)
        self.pool = pool
        self.consumer = consumer or default_consumer_name(settings)
        self.stats = RecorderStats()
        self._stop = threading.Event()
        self._streams: dict[str, str] = {}  # stream key -> queue ('' for the schedule run stream)
        self._schedule_stream = GlobalKeys(settings.key_prefix).schedule_events
        self._next_discover = 0.0
        self._next_claim = 0.0
        self._own_pending_done = False
        self._trim_reports: dict[str, tuple[str, int]] = {}
        # Entries per stream asked of the next XREADGROUP: batch_size, doubled while reads come back full.
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

    def run(self) -> None:
        """Record until stop(); Redis and PostgreSQL outages are waited out, never fatal."""
        log.info("recorder %s started (group %s)", self.consumer, self.options.group)
        delay = self.options.retry_initial_seconds
        while not self._stop.is_set():
            try:
                handled = self.run_once()
                delay = self.options.retry_initial_seconds
                if handled and not self._full:
                    # A partial batch: let events accumulate a moment, so a busy system is recorded in
                    # fewer, larger transactions (one WAL flush each) instead of a stream of small ones.
                    self._stop.wait(self.options.linger_ms / 1000)
            except JobQueueError as exc:
                log.warning("recorder step failed, retrying in %.1fs: %s", delay, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self.options.retry_max_seconds)
            except Exception:
                # A bug, not an outage; but a daemon that dies on one odd entry records nothing more.
                # Nothing unacknowledged is lost: the step is simply tried again after a pause.
                log.exception("recorder step failed unexpectedly, retrying in %.1fs", delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.options.retry_max_seconds)
        log.info("recorder %s stopped: %s", self.consumer, self.stats)

    def run_once(self, block: bool = True) -> int:
        """One step: discover queues, read (or claim) one batch, record it, acknowledge it.

        Returns the number of entries handled (0 when there was nothing to read)."""
        self._discover()
        entries = self._read_own_pending() or self._claim_stale() or self._read_new(block)
        handled = 0
        if entries and self._record(entries):
            self._ack(entries)
            handled = len(entries)
        self._run_periodic()
        return handled

    # -- Redis side ------------------------------------------------------------------------------------

    def _discover(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_discover:
            return
        self._next_discover = now + self.options.discover_interval_seconds
        with translate_errors():
            queues = sorted(self.redis.smembers(GlobalKeys(self.settings.key_prefix).queues))
            # Schedule runs have their own stream, on the schedules' hash slot.
            wanted = [(QueueKeys(self.settings.key_prefix, q).events, q) for q in queues]
            for stream, queue in [(self._schedule_stream, ""), *wanted]:
                if stream in self._streams:
                    continue
                try:
                    # From the start ('0'): whatever the stream still holds is recorded (idempotently).
                    self.redis.xgroup_create(stream, self.options.group, id="0", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                self._streams[stream] = queue
            for stream in self._streams:
                self._check_trimmed(stream)

    def _check_trimmed(self, stream: str) -> None:
        """Count events trimmed by MAXLEN before this group read them (a backlog longer than the stream
        cap, e.g. PostgreSQL down for too long). They are lost to the record; say so loudly."""
        info = self.redis.xinfo_stream(stream)
        group = next((g for g in self.redis.xinfo_groups(stream) if g["name"] == self.options.group), None)
        first = info.get("first-entry")
        if group is None or not first or group.get("lag") is None:
            return
        last_delivered = group["last-delivered-id"]
        if _entry_key(first[0]) <= _entry_key(last_delivered):
            return
        # Everything still in the stream is unread, so the rest of the lag was trimmed away unread.
        lost = int(group["lag"]) - int(info["length"])
        reported_at, reported = self._trim_reports.get(stream, ("", 0))
        new = lost - reported if reported_at == last_delivered else lost
        if new > 0:
            self.stats.trimmed += new
            self._trim_reports[stream] = (last_delivered, lost)
            log.error(
                "%d events of %s were trimmed (MAXLEN) before being recorded: raise "
                "JOBQUEUE_EVENTS_MAX_LENGTH or add recorders",
                new,
                stream,
            )

    def _read_own_pending(self) -> list[Entry]:
        """Entries delivered to this consumer name earlier and never acknowledged (a restart with a
        stable name); read at start and after a failed XACK, until none are left."""
        if self._own_pending_done or not self._streams:
            return []
        entries = entries_from_reply(self._xreadgroup("0", self.options.batch_size))
        if not entries:
            self._own_pending_done = True
        return entries

    def _claim_stale(self) -> list[Entry]:
        """Entries pending too long at another consumer (a recorder that died), claimed for this one."""
        now = time.monotonic()
        if now < self._next_claim:
            return []
        self._next_claim = now + self.options.claim_interval_seconds
        idle_ms = int(self.options.claim_idle_seconds * 1000)
        entries: list[Entry] = []
        with translate_errors():
            for stream in self._streams:
                start = "0-0"
                while len(entries) < self.options.batch_size:
                    next_start, claimed, *rest = self.redis.xautoclaim(
                        stream, self.options.group, self.consumer, idle_ms, start, self.options.batch_size
                    )
                    entries += [(stream, entry_id, fields) for entry_id, fields in claimed]
                    deleted = rest[0] if rest else []
                    if deleted:
                        # Trimmed by MAXLEN before anyone recorded them: lost, and Redis has already
                        # dropped them from the pending list.
                        self.stats.trimmed += len(deleted)
                        log.error("%d events of %s were trimmed before being recorded", len(deleted), stream)
                    if next_start in ("0-0", b"0-0"):
                        break
                    start = next_start
                self._forget_dead_consumers(stream)
        if entries:
            self.stats.claimed += len(entries)
            log.info("claimed %d pending events of recorders presumed dead", len(entries))
            # More may be waiting: look again on the next step rather than after a full interval.
            self._next_claim = 0.0
        return entries

    def _forget_dead_consumers(self, stream: str) -> None:
        """Delete consumers with nothing pending that have been silent for long: every recorder restart
        without a stable name leaves one behind."""
        forget_ms = max(3_600_000, int(self.options.claim_idle_seconds * 10_000))
        for consumer in self.redis.xinfo_consumers(stream, self.options.group):
            if (
                consumer["name"] != self.consumer
                and consumer["pending"] == 0
                and consumer["idle"] > forget_ms
            ):
                self.redis.xgroup_delconsumer(stream, self.options.group, consumer["name"])

    def _read_new(self, block: bool) -> list[Entry]:
        if not self._streams:
            if block:
                self._stop.wait(min(1.0, self.options.block_ms / 1000))
            return []
        reply = self._xreadgroup(">", self._count, self.options.block_ms if block else None)
        entries = entries_from_reply(reply)
        self._full = any(len(items) >= self._count for _, items in reply or [])
        self._count = (
            min(self._count * 2, max(self.options.max_batch_size, self.options.batch_size))
            if self._full
            else self.options.batch_size
        )
        return entries

    def _xreadgroup(self, after: str, count: int, block_ms: int | None = None) -> Any:
        """One XREADGROUP over every stream from ``after`` ('>' new entries, '0' this consumer's pending),
        its reply left unparsed for entries_from_reply (on Redis Cluster one call per stream)."""
        wait: list[object] = ["BLOCK", block_ms] if block_ms is not None else []
        with translate_errors():
            try:
                if self._per_stream:
                    return read_each_stream(
                        self._unparsed_redis, list(self._streams), after, group=self.options.group,
                        consumer=self.consumer, count=count, block_ms=block_ms, stop=self._stop,
                    )  # fmt: skip
                return self._unparsed_redis.execute_command(
                    "XREADGROUP", "GROUP", self.options.group, self.consumer, "COUNT", count, *wait,
                    "STREAMS", *self._streams, *[after] * len(self._streams),
                )  # fmt: skip
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # A stream or its group is gone: deleted, or created on a primary that failed over
                    # before replicating it. One read covers every stream, so without this every step
                    # failed on it for good, for every queue: forget them all, and the next discovery
                    # creates the groups again (BUSYGROUP for those still there).
                    self._streams.clear()
                    self._next_discover = 0.0
                raise

    def _ack(self, entries: list[Entry]) -> None:
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id, _ in entries:
            by_stream.setdefault(stream, []).append(entry_id)
        # A failed XACK is harmless: the entries stay pending at this consumer and their second recording
        # changes nothing. So an ack failure is logged, not retried here; the next step re-reads them
        # (_read_own_pending) rather than leaving them to the claim of recorders presumed dead, which
        # waits claim_idle_seconds while the lag gauge counts them as unrecorded.
        try:
            # Packed by hiredis (read_many): redis-py's pipeline encodes each of hundreds of ids in Python,
            # ~5% of the recorder's CPU. XACK is idempotent: read_many's resend on a dropped link is safe.
            group = self.options.group
            replies = read_many(
                self.redis, [("XACK", stream, group, *ids) for stream, ids in by_stream.items()]
            )
            with translate_errors():
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply  # an error reply (e.g. NOGROUP), translated as the pipeline's was
        except JobQueueError as exc:
            self._own_pending_done = False
            log.warning("XACK failed (entries will be re-read and skipped): %s", exc)

    # -- PostgreSQL side -------------------------------------------------------------------------------

    def _record(self, entries: list[Entry]) -> bool:
        """Write the batch, retrying with backoff while PostgreSQL is unavailable, parking the entries it
        refuses (record/poison.py); False if stopped first."""
        parsed: list[Parsed] = []
        for stream, entry_id, fields in entries:
            if fields is None:
                self.stats.trimmed += 1
                continue
            item: StreamEvent | ScheduleRunEvent | None
            if stream == self._schedule_stream:
                item = parse_schedule_entry(stream, entry_id, fields)
            else:
                item = parse_entry(stream, self._streams.get(stream, ""), entry_id, fields)
            if item is not None:
                parsed.append(Parsed(stream, entry_id, fields, item))
        delay = self.options.retry_initial_seconds
        while True:
            try:
                result = write_or_park(self._write, self._park, parsed)
                break
            except JobQueueError as exc:
                # Nothing is acknowledged, so nothing is lost: the same batch is tried again.
                self.stats.write_retries += 1
                level = logging.WARNING if isinstance(exc, RecordUnavailable) else logging.ERROR
                log.log(level, "recording %d events failed, retrying in %.1fs: %s", len(parsed), delay, exc)
                if self._stop.wait(delay):
                    return False
                delay = min(delay * 2, self.options.retry_max_seconds)
        self.stats.batches += 1
        self.stats.recorded += result.inserted
        self.stats.duplicates += result.duplicates
        return True

    def _write(self, events: Sequence[StreamEvent], runs: Sequence[ScheduleRunEvent]) -> BatchResult:
        with pg_errors(), self.pool.connection() as conn:
            return write_batch(conn, events, runs)

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


# Container allocations between young-generation collections in a recorder process (CPython's default
# is 700). A batch holds thousands of short-lived objects (entry dicts, events, deltas, rows) that
# reference counting frees when the batch ends; at 700 the collector runs dozens of times per batch,
# scans them while they are alive and promotes them, which then triggers full collections.
RECORDER_GC_YOUNG_THRESHOLD = 20_000


def tune_garbage_collector() -> None:
    """For a process that only records (``jobqueue recorder``), called once it is built: move everything
    alive so far (modules, settings, connections) out of the collector's sight (gc.freeze) and collect
    the young generation less often. Measured with bench/recorder_cost.py (docs/record.md): the
    collector was about a sixth of the recorder's CPU. Not for processes that run other work too."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(RECORDER_GC_YOUNG_THRESHOLD, middle, old)


def _entry_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _unparsed(response: Any, **options: Any) -> Any:
    return response
