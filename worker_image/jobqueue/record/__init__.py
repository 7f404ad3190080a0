"""The durable record in PostgreSQL: migrations, the recorder, queries, analytics and retention.

Redis is the live state; this package keeps what outlives it. Nothing here runs at import time: entry
points build a pool with :func:`open_pool` and pass it down. The names below are the public API; the
modules behind them may change.
"""

from jobqueue.record.analytics import (
    AggregateRow,
    Granularity,
    WindowStats,
    aggregates,
    rollup,
    window_stats,
)
from jobqueue.record.db import open_pool
from jobqueue.record.maintenance import build_recorder, record_schedule_run, run_migrate, run_recorder
from jobqueue.record.queries import (
    DeadLetterRow,
    EventRow,
    Page,
    RecordQueries,
    SortKey,
    TaskHistory,
    TaskRow,
    TaskSearch,
    TimeField,
)
from jobqueue.record.recorder import Recorder
from jobqueue.record.recorder_stats import RecorderStats
from jobqueue.record.retention import prune
from jobqueue.record.settings import RecordSettings

__all__ = [
    "AggregateRow",
    "DeadLetterRow",
    "EventRow",
    "Granularity",
    "Page",
    "RecordQueries",
    "RecordSettings",
    "Recorder",
    "RecorderStats",
    "SortKey",
    "TaskHistory",
    "TaskRow",
    "TaskSearch",
    "TimeField",
    "WindowStats",
    "aggregates",
    "build_recorder",
    "open_pool",
    "prune",
    "record_schedule_run",
    "rollup",
    "run_migrate",
    "run_recorder",
    "window_stats",
]
