"""Prometheus metrics read from live Redis state at scrape time (no per-task work in the API).

Labels are queue, priority and status; never task ids (unbounded cardinality).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobqueue.client import Client

# stats-hash field -> counter name (without the _total suffix, which prometheus_client appends)
COUNTERS = {
    "enqueued": ("jobqueue_tasks_enqueued", "Tasks enqueued"),
    "started": ("jobqueue_tasks_started", "Task attempts started (leases handed out)"),
    "succeeded": ("jobqueue_tasks_succeeded", "Tasks that succeeded"),
    "retried": ("jobqueue_tasks_retried", "Failed attempts scheduled for a retry"),
    "dead_lettered": ("jobqueue_tasks_dead_lettered", "Tasks moved to the dead letter queue"),
    "cancelled": ("jobqueue_tasks_cancelled", "Tasks cancelled"),
    "lost_leases": ("jobqueue_leases_lost", "Leases that expired and were recovered"),
}


class QueueCollector(Collector):
    """Collects queue gauges and counters for every known queue, plus workers by state."""

    def __init__(self, client: Client, stale_after_seconds: float = 30.0) -> None:
        self.client = client
        self.stale_after_seconds = stale_after_seconds

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on each scrape."""
        started = time.monotonic()
        depth = GaugeMetricFamily("jobqueue_queue_depth", "Ready tasks", labels=["queue", "priority"])
        delayed = GaugeMetricFamily("jobqueue_queue_delayed", "Delayed and retrying tasks", labels=["queue"])
        in_flight = GaugeMetricFamily("jobqueue_queue_in_flight", "Leased (running) tasks", labels=["queue"])
        dead = GaugeMetricFamily("jobqueue_dead_letters", "Tasks in the dead letter queue", labels=["queue"])
        oldest = GaugeMetricFamily(
            "jobqueue_queue_oldest_task_age_seconds", "Wait of the oldest ready task", labels=["queue"]
        )
        counters = {
            field: CounterMetricFamily(name, doc, labels=["queue"]) for field, (name, doc) in COUNTERS.items()
        }
        for queue in self.client.known_queues():
            d = self.client.queue_depth(queue)
            for priority, n in d.ready.items():
                depth.add_metric([queue, priority], n)
            delayed.add_metric([queue], d.delayed)
            in_flight.add_metric([queue], d.in_flight)
            dead.add_metric([queue], d.dead)
            oldest.add_metric([queue], self.client.oldest_ready_age(queue) or 0.0)
            stats = self.client.redis.hgetall(self.client.queue_keys(queue).stats)
            for field, family in counters.items():
                family.add_metric([queue], float(stats.get(field, 0)))
        workers = GaugeMetricFamily("jobqueue_workers", "Workers by state", labels=["state"])
        by_state = {"ACTIVE": 0, "IDLE": 0, "DRAINING": 0, "DEAD": 0}
        for w in self.client.list_workers():
            state = "DEAD" if w["heartbeat_age"] > self.stale_after_seconds else str(w.get("status", "IDLE"))
            by_state[state] = by_state.get(state, 0) + 1
        for state, n in by_state.items():
            workers.add_metric([state], n)
        yield from (depth, delayed, in_flight, dead, oldest, workers, *counters.values())
        yield GaugeMetricFamily(
            "jobqueue_scrape_duration_seconds",
            "Time to read live state for this scrape",
            value=time.monotonic() - started,
        )
