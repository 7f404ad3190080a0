"""The recorder's counters, apart from the recorder so that each of its parts (record/recorder.py,
record/stream_balancing.py) can count what it does."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RecorderStats:
    """Counters since start (read by tests, the benchmark and the logs)."""

    batches: int = 0
    recorded: int = 0
    duplicates: int = 0
    taken_over: int = 0  # streams this recorder took (at start, from a recorder gone, or rebalanced)
    trimmed: int = 0
    write_retries: int = 0  # batches (or steps) retried because PostgreSQL failed
    rejected: int = 0  # entries parked in record_rejects (record/poison.py)
    read_ahead: int = 0  # batches read while the one before was written (record/read_ahead.py)
