"""Prometheus metrics read from live Redis state at scrape time (no per-task work in the API).

Everything here is cluster-wide, whichever API replica is scraped: queue gauges and counters, the run time
and queue wait histograms the workers add up in Redis (broker/task_metrics.py), the recorder's progress
(read from its consumer group) and the schedules' fire counters (written by the schedulers).

Labels are queue, priority, task, schedule and state; never task ids (unbounded cardinality).
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from jobqueue.broker.client import Client
from jobqueue.broker.live_state import task_metrics_fields
from jobqueue.broker.queue_overview import QueueState, read_queue_states
from jobqueue.broker.recorder_progress import RecorderProgress, read_record_rejects, read_recorder_progress
from jobqueue.broker.task_metrics import (
    FAILED,
    RETRIED,
    RUN,
    RUN_BUCKETS,
    WAIT,
    WAIT_BUCKETS,
    read_counters,
    read_histograms,
)
from jobqueue.models import WorkerState
from jobqueue.schedules.registry import ScheduleRegistry

# stats-hash field -> counter name (without the _total suffix, which prometheus_client appends)
COUNTERS = {
    "enqueued": ("jobqueue_tasks_enqueued", "Tasks enqueued"),
    "started": ("jobqueue_tasks_started", "Task attempts started (leases handed out)"),
    "handed_off": (
        "jobqueue_tasks_handed_off",
        "Task attempts the enqueue script leased straight to a parked worker (part of started)",
    ),
    "succeeded": ("jobqueue_tasks_succeeded", "Tasks that succeeded"),
    "retried": ("jobqueue_tasks_retried", "Failed attempts scheduled for a retry"),
    "dead_lettered": ("jobqueue_tasks_dead_lettered", "Tasks moved to the dead letter queue"),
    "cancelled": ("jobqueue_tasks_cancelled", "Tasks cancelled"),
    "lost_leases": ("jobqueue_leases_lost", "Leases that expired and were recovered"),
}
# task-metrics hash counter kind -> (counter name without _total, help); labels queue and task
TASK_COUNTERS = {
    FAILED: (
        "jobqueue_task_failures",
        "Attempts that ended their task FAILED or TIMEOUT (dead-lettered), by task name, as workers report",
    ),
    RETRIED: (
        "jobqueue_task_retries",
        "Failed attempts scheduled for a retry, by task name, as workers report",
    ),
}


def build_info() -> Metric:
    """``jobqueue_build_info{version, python} 1``: which release answers, joinable onto any series."""
    try:
        version = metadata.version("jobqueue")
    except metadata.PackageNotFoundError:
        version = "unknown"  # run from a source tree that was never installed
    info = GaugeMetricFamily(
        "jobqueue_build_info",
        "Always 1: the jobqueue version and Python this API runs",
        labels=["version", "python"],
    )
    info.add_metric([version, platform.python_version()], 1)
    return info


class QueueCollector(Collector):
    """Collects queue gauges, counters and histograms for every known queue, workers by state, the
    recorder's lag and the schedules' fires."""

    def __init__(
        self,
        client: Client,
        stale_after_seconds: float = 30.0,
    ) -> None:
        self.client = client
        self.stale_after_seconds = stale_after_seconds

    def exposition(self, registry: CollectorRegistry) -> bytes:
        """The whole scrape: the per-queue families (rendered here, see render_queue_families), then
        ``registry`` (this collector's other families among them), then the scrape's duration."""
        started = time.monotonic()
        states = read_queue_states(self.client, self.client.known_queues(), with_counters=True)
        body = render_queue_families(states).encode() + generate_latest(registry)
        duration = time.monotonic() - started
        return body + (
            b"# HELP jobqueue_scrape_duration_seconds Time to read live state for this scrape\n"
            b"# TYPE jobqueue_scrape_duration_seconds gauge\n"
            + f"jobqueue_scrape_duration_seconds {duration!r}\n".encode()
        )

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on each scrape: every family but the per-queue gauges and counters,
        which ``exposition`` renders itself."""
        yield build_info()
        queues = self.client.known_queues()
        yield from self._task_histograms(queues)
        yield self._workers()
        yield from recorder_families(read_recorder_progress(self.client, queues))
        yield self._rejected()
        yield from self._schedule_families()

    def _rejected(self) -> Metric:
        rejected = CounterMetricFamily(
            "jobqueue_recorder_events_rejected",
            "Stream entries PostgreSQL refused, parked in the record_rejects table instead of recorded",
        )
        rejected.add_metric([], read_record_rejects(self.client))
        return rejected

    def _task_histograms(self, queues: list[str]) -> Iterator[Metric]:
        run = HistogramMetricFamily(
            "jobqueue_task_run_seconds",
            "Run time of one task attempt, as measured by its worker",
            labels=["queue", "task"],
        )
        wait = HistogramMetricFamily(
            "jobqueue_task_queue_wait_seconds",
            "Time from when a task became ready (enqueue, eta, retry due time) to its lease",
            labels=["queue"],
        )
        counters = {
            kind: CounterMetricFamily(name, doc, labels=["queue", "task"])
            for kind, (name, doc) in TASK_COUNTERS.items()
        }
        for queue, fields in task_metrics_fields(self.client, queues).items():
            ran = read_histograms(RUN, fields, RUN_BUCKETS)
            for h in ran:
                run.add_metric([queue, h.task], h.buckets, h.total)
            for h in read_histograms(WAIT, fields, WAIT_BUCKETS):
                wait.add_metric([queue], h.buckets, h.total)
            for kind, family in counters.items():
                # A task that ran shows 0 failures rather than no series: increase() over a series that
                # appears at 1 misses that first failure, and an alert on it would never fire.
                counts = {h.task: 0 for h in ran} | read_counters(kind, fields)
                for task, n in sorted(counts.items()):
                    family.add_metric([queue, task], n)
        yield from (run, wait, *counters.values())

    def _workers(self) -> Metric:
        workers = GaugeMetricFamily("jobqueue_workers", "Workers by state", labels=["state"])
        by_state = {"ACTIVE": 0, "IDLE": 0, "DRAINING": 0, "DEAD": 0}
        for w in self.client.list_workers():
            # A worker that has not reported a state yet is counted idle, as it always was here.
            status = WorkerState.IDLE if w.status is WorkerState.UNKNOWN else w.status
            state = "DEAD" if w.heartbeat_age > self.stale_after_seconds else status.value
            by_state[state] = by_state.get(state, 0) + 1
        for state, n in by_state.items():
            workers.add_metric([state], n)
        return workers

    def _schedule_families(self) -> Iterator[Metric]:
        fires = CounterMetricFamily(
            "jobqueue_schedule_fires", "Schedule fires that enqueued a task", labels=["schedule"]
        )
        misfires = CounterMetricFamily(
            "jobqueue_schedule_misfires",
            "Schedule fire times skipped because they were missed past startingDeadlineSeconds",
            labels=["schedule"],
        )
        skipped = CounterMetricFamily(
            "jobqueue_schedule_skipped",
            "Schedule fires skipped by the Forbid concurrency policy (the previous run was still running)",
            labels=["schedule"],
        )
        next_fire = GaugeMetricFamily(
            "jobqueue_schedule_next_fire_timestamp_seconds",
            "Unix time of the next fire of each active (not paused) schedule",
            labels=["schedule"],
        )
        for info in ScheduleRegistry(self.client).list():
            name = info.schedule.name
            fires.add_metric([name], info.fired)
            misfires.add_metric([name], info.missed)
            skipped.add_metric([name], info.skipped)
            if info.next_fire_at is not None and not info.paused:
                next_fire.add_metric([name], info.next_fire_at.timestamp())
        yield from (fires, misfires, skipped, next_fire)


# (family, help, type, the QueueState value of a queue); the depth family has one series per priority.
_QUEUE_GAUGES: list[tuple[str, str, Callable[[QueueState], float]]] = [
    ("jobqueue_queue_delayed", "Delayed and retrying tasks", lambda s: s.depth.delayed),
    ("jobqueue_queue_in_flight", "Leased (running) tasks", lambda s: s.depth.in_flight),
    ("jobqueue_dead_letters", "Tasks in the dead letter queue", lambda s: s.depth.dead),
    (
        "jobqueue_queue_oldest_task_age_seconds",
        "Wait of the oldest ready task",
        lambda s: s.oldest_ready_age or 0.0,
    ),
]


def render_queue_families(states: Sequence[QueueState]) -> str:
    """The per-queue gauges and counters in the Prometheus text format, rendered directly: with 10,000
    queues they are 150,000 series, which prometheus_client's generic exposition took seconds to format
    (it validates and escapes every label; queue names need neither: they match [A-Za-z0-9_-]+). Labels
    in name order, as prometheus_client writes them, so the text is what it was."""
    lines = [
        "# HELP jobqueue_queue_depth Ready tasks",
        "# TYPE jobqueue_queue_depth gauge",
    ]
    for state in states:
        queue = state.depth.queue
        for priority, n in state.depth.ready.items():
            lines.append(f'jobqueue_queue_depth{{priority="{priority}",queue="{queue}"}} {float(n)!r}')
    for name, doc, value in _QUEUE_GAUGES:
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} gauge"]
        lines += [f'{name}{{queue="{s.depth.queue}"}} {float(value(s))!r}' for s in states]
    for field, (name, doc) in COUNTERS.items():
        lines += [f"# HELP {name}_total {doc}", f"# TYPE {name}_total counter"]
        lines += [
            f'{name}_total{{queue="{s.depth.queue}"}} {float(s.counters.count(field) if s.counters else 0)!r}'
            for s in states
        ]
    lines.append("")
    return "\n".join(lines)


def recorder_families(progress: RecorderProgress | None) -> Iterator[Metric]:
    """The recorder's lag and recorded-events counter; nothing when no recorder has published a position
    yet (none ever ran: a lag of 0 would claim it is keeping up)."""
    if progress is None:
        return
    yield GaugeMetricFamily(
        "jobqueue_recorder_lag_seconds",
        "Age of the oldest event not yet recorded in PostgreSQL (0 when the recorder is caught up)",
        value=progress.lag_seconds,
    )
    if progress.recorded is None:
        return  # this Redis cannot count them: no series rather than a false 0
    recorded = CounterMetricFamily(
        "jobqueue_recorder_events_recorded",
        "Events the recorders committed to PostgreSQL",
    )
    recorded.add_metric([], progress.recorded)
    yield recorded
