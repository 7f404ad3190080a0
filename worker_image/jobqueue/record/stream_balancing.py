"""Which streams a recorder records: discovering the queues, owning its fair share of their streams (taking
free ones, giving up the excess, between batches only), taking a batch's streams back after its
PostgreSQL session was lost, and noticing events trimmed from an owned stream before they were recorded.

:class:`StreamBalancing` is the part of :class:`jobqueue.record.recorder.Recorder` that decides what it
owns; the recorder sets up the state it declares. The locks themselves are record/ownership.py; the fair
share is record/positions.py.
"""

from __future__ import annotations

import logging
import time

import redis

from jobqueue.broker.redis_io import translate_errors
from jobqueue.errors import RecordUnavailable
from jobqueue.keys import GlobalKeys, QueueKeys
from jobqueue.record.ownership import StreamOwnership
from jobqueue.record.poison import Parsed
from jobqueue.record.positions import Position, fair_share
from jobqueue.record.recorder_stats import RecorderStats
from jobqueue.record.settings import RecordSettings
from jobqueue.record.stream_reads import start_without_position, trimmed_before_recorded
from jobqueue.settings import Settings

log = logging.getLogger(__name__)


class StreamBalancing:
    """Discovery and ownership of the event streams (state set up by Recorder.__init__)."""

    settings: Settings
    options: RecordSettings
    redis: redis.Redis
    consumer: str
    stats: RecorderStats
    _ownership: StreamOwnership
    _queues: dict[str, str]
    _owned: dict[str, Position]
    _schedule_stream: str
    _next_discover: float

    def _discover(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_discover and self._ownership.connected:
            return
        self._next_discover = now + self.options.discover_interval_seconds
        if not self._ownership.connected:
            self._owned.clear()  # a new session holds no lock: every stream is taken again
        with translate_errors():
            queues = sorted(self.redis.smembers(GlobalKeys(self.settings.key_prefix).queues))
        # Schedule runs have their own stream, on the schedules' hash slot.
        self._queues = {self._schedule_stream: ""}
        self._queues.update((QueueKeys(self.settings.key_prefix, q).events, q) for q in queues)
        try:
            self._balance()
        except RecordUnavailable:
            self._ownership.lost()
            self._owned.clear()
            raise
        for stream in list(self._owned):
            self._check_trimmed(stream)

    def _balance(self) -> None:
        """Own this recorder's fair share of the streams: give up the excess (everything read from them
        is committed: this runs between batches), take free ones up to the share."""
        share = fair_share(len(self._queues), self._ownership.recorders())
        for stream in sorted(self._owned)[share:] if len(self._owned) > share else []:
            self._ownership.release(stream)
            del self._owned[stream]
        taken = [s for s in sorted(self._queues) if s not in self._owned]
        new: list[str] = []
        for stream in taken:
            if len(self._owned) + len(new) >= share:
                break
            if self._ownership.try_take(stream):
                new.append(stream)
        if not new:
            return
        stored = self._ownership.stored(new)
        for stream in new:
            self._owned[stream] = stored.get(stream) or start_without_position(
                self.redis, stream, self.options.group
            )
        self.stats.taken_over += len(new)
        log.info("recorder %s took %d streams (now owns %d)", self.consumer, len(new), len(self._owned))

    def _check_trimmed(self, stream: str) -> None:
        """Count events trimmed by MAXLEN before they were recorded (a backlog longer than the stream cap,
        e.g. PostgreSQL down for too long). They are lost to the record; say so loudly."""
        position = self._owned[stream]
        lost = trimmed_before_recorded(self.redis, position)
        if lost:
            self.stats.trimmed += lost
            # Counted as passed, so they are reported once; stored with the next batch's position.
            self._owned[stream] = Position(stream, position.entry_id, (position.consumed or 0) + lost)
            log.error(
                "%d events of %s were trimmed (MAXLEN) before being recorded: raise "
                "JOBQUEUE_EVENTS_MAX_LENGTH or add recorders",
                lost,
                stream,
            )

    def _still_owned(
        self, parsed: list[Parsed], positions: list[Position]
    ) -> tuple[list[Parsed], list[Position]]:
        """After the session was lost: take the batch's streams again; the part of the batch from
        streams now owned by another recorder is dropped (that recorder reads them itself)."""
        self._owned.clear()
        self._next_discover = 0.0
        kept = []
        for position in positions:
            if self._ownership.try_take(position.stream):
                kept.append(position)
        stored = self._ownership.stored(p.stream for p in kept)
        for position in kept:
            self._owned[position.stream] = stored.get(position.stream) or position
        streams = {p.stream for p in kept}
        return [p for p in parsed if p.stream in streams], kept
