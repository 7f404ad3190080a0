"""/metrics against a real Redis: histograms filled by a real worker running real tasks, the recorders'
progress read from the positions they committed, and the schedules' fire counters."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jq_testing import wait_until
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from record_helpers import drain, make_recorder

from jobqueue import App, Client, Settings
from jobqueue.broker.redis_io import run_script
from jobqueue.broker.task_metrics import MetricsFlush, build_flush
from jobqueue.keys import GlobalKeys
from jobqueue.schedules.registry import fire_due_schedules
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(90)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ApiSettings(keys=SecretStr("k:admin")))) as client:
        yield client


def scrape(api: TestClient) -> Samples:
    body = api.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_run_time_and_queue_wait_histograms_from_a_real_worker(
    api: TestClient, client: Client, start_worker: Callable[..., Any]
) -> None:
    # Two tasks wait for a worker that is not there yet: their queue wait is over 1.2 s.
    early = [client.enqueue("sleepy", args=[0.3]).id for _ in range(2)]
    time.sleep(1.2)
    start_worker("--pool", "thread", "--concurrency", "2")
    wait_until(lambda: all(client.get_task(i).status == "SUCCESS" for i in early), 30)
    # Three tasks with an idle worker waiting, and one due in 1.5 s: its wait counts from its eta.
    quick = [client.enqueue("add", args=[i, i]).id for i in range(3)]
    quick.append(client.enqueue("add", args=[1, 1], countdown=1.5).id)
    wait_until(lambda: all(client.get_task(i).status == "SUCCESS" for i in quick), 30)

    def flushed() -> bool:
        return sample(scrape(api), "jobqueue_task_queue_wait_seconds_count", queue="default") == 6

    wait_until(flushed, 15, interval=0.2)
    s = scrape(api)
    wait = "jobqueue_task_queue_wait_seconds_bucket"
    assert sample(s, wait, queue="default", le="1.0") == 4  # the quick ones, the delayed one included
    assert sample(s, wait, queue="default", le="+Inf") == 6
    assert (sample(s, "jobqueue_task_queue_wait_seconds_sum", queue="default") or 0) >= 2.4
    run = "jobqueue_task_run_seconds_bucket"
    assert sample(s, run, queue="default", task="sleepy", le="0.25") == 0
    assert sample(s, run, queue="default", task="sleepy", le="5.0") == 2
    assert sample(s, "jobqueue_task_run_seconds_count", queue="default", task="sleepy") == 2
    assert 0.6 <= (sample(s, "jobqueue_task_run_seconds_sum", queue="default", task="sleepy") or 0) < 5
    assert sample(s, "jobqueue_task_run_seconds_count", queue="default", task="add") == 4
    assert sample(s, run, queue="default", task="add", le="+Inf") == 4


def test_a_task_handed_to_a_parked_worker_is_counted(
    api: TestClient, client: Client, start_worker: Callable[..., Any]
) -> None:
    start_worker("--pool", "thread", "--concurrency", "2")
    wait_until(lambda: client.redis.hlen(client.queue_keys("default").parked) > 0, 30)
    task = client.enqueue("add", args=[1, 2])
    wait_until(lambda: client.get_task(task.id).status == "SUCCESS", 30)
    s = scrape(api)
    assert sample(s, "jobqueue_tasks_handed_off_total", queue="default") == 1
    assert sample(s, "jobqueue_tasks_started_total", queue="default") == 1


def test_flush_script_adds_atomically_and_a_resent_flush_only_once(client: Client) -> None:
    def flush(seq: int, writer: str = "w1") -> int:
        ints = {"run:0.5:t": 2, "run:count:t": 2}
        return int(
            run_script(
                client.redis,
                build_flush(
                    client.settings.key_prefix, writer, MetricsFlush("q", seq, ints, {"run:sum:t": 0.25})
                ),
            )
        )

    assert flush(1) == 3
    assert flush(1) == 0  # the same flush again (its reply was lost): skipped
    assert flush(2) == 3
    assert flush(1, writer="w2") == 3  # another worker process numbers its own flushes
    assert client.redis.hgetall(client.queue_keys("q").task_metrics) == {
        "run:0.5:t": "6", "run:count:t": "6", "run:sum:t": "0.75",
    }  # fmt: skip
    assert 0 < client.redis.ttl(client.queue_keys("q").task_metrics_applied("w1")) <= 3600


def test_recorder_lag_and_recorded_events_come_from_the_recorded_positions(
    api: TestClient, client: Client, pg_pool: ConnectionPool
) -> None:
    for i in range(3):
        client.enqueue("add", args=[i, i])
    assert sample(scrape(api), "jobqueue_recorder_lag_seconds") is None  # no recorder has ever run
    # A real recorder that reads one entry per batch: one recorded, two waiting.
    recorder = make_recorder(client, pg_pool, batch_size=1, max_batch_size=1)
    assert recorder.run_once(block=False) == 1
    time.sleep(0.3)
    s = scrape(api)
    assert (sample(s, "jobqueue_recorder_lag_seconds") or 0) >= 0.3
    assert sample(s, "jobqueue_recorder_events_recorded_total") == 1
    drain(recorder)
    s = scrape(api)
    assert sample(s, "jobqueue_recorder_lag_seconds") == 0
    assert sample(s, "jobqueue_recorder_events_recorded_total") == client.redis.xlen(
        client.queue_keys("default").events
    )
    recorder.close()


def test_schedule_fires_misfires_and_next_fire(api: TestClient, settings: Settings) -> None:
    app = App(settings=settings)
    try:
        app.schedules.register("m", cron="* * * * *", task="add", starting_deadline_seconds=30)
        seconds, _ = app.client.redis.time()
        app.client.redis.zadd(
            GlobalKeys(settings.key_prefix).schedules_due, {"m": (seconds // 60 - 10) * 60_000}
        )
        report = fire_due_schedules(app.client, "test")
        info = app.schedules.get("m")
    finally:
        app.close()
    s = scrape(api)
    assert sample(s, "jobqueue_schedule_fires_total", schedule="m") == report.fired == info.fired
    assert sample(s, "jobqueue_schedule_misfires_total", schedule="m") == report.missed > 0
    assert info.next_fire_at is not None
    assert (
        sample(s, "jobqueue_schedule_next_fire_timestamp_seconds", schedule="m")
        == info.next_fire_at.timestamp()
    )


def test_failures_and_retries_per_queue_and_task_from_a_real_worker(
    api: TestClient, client: Client, start_worker: Callable[..., Any]
) -> None:
    start_worker("--pool", "thread", "--concurrency", "4")
    ids = [
        # The retry policy is the worker's (jq_test_app); max_retries is the enqueuer's.
        client.enqueue("fail_times", args=[2], max_retries=3).id,  # two retries, then success
        client.enqueue("fail_with", args=["value"]).id,  # not retried: dead-lettered at once
        client.enqueue("fail_with", args=["os"], max_retries=5).id,  # five retries, then dead-lettered
        client.enqueue("no_such_task").id,  # rejected by the worker: a final failure of an unknown name
        client.enqueue("add", args=[1, 2]).id,
    ]
    wait_until(lambda: all(client.get_task(i).status in {"SUCCESS", "FAILED"} for i in ids), 60)

    def flushed() -> bool:
        s = scrape(api)
        totals = [
            sum(v for (n, _), v in s.items() if n == f"jobqueue_task_{name}_total")
            for name in ("retries", "failures")
        ]
        return totals == [7, 3]

    wait_until(flushed, 15, interval=0.2)
    s = scrape(api)
    retries, failures = "jobqueue_task_retries_total", "jobqueue_task_failures_total"
    assert sample(s, retries, queue="default", task="fail_times") == 2
    assert sample(s, failures, queue="default", task="fail_times") == 0  # ran: shown as 0, not absent
    assert sample(s, failures, queue="default", task="fail_with") == 2
    assert sample(s, failures, queue="default", task="_other") == 1  # never the caller's raw name
    assert sample(s, failures, queue="default", task="add") == 0
    assert sample(s, retries, queue="default", task="add") == 0
    # They add up to the queue's own counters, which the scripts keep.
    assert sample(s, "jobqueue_tasks_retried_total", queue="default") == 7
    assert sample(s, "jobqueue_tasks_dead_lettered_total", queue="default") == 3


def test_build_info_names_the_version_and_python(api: TestClient) -> None:
    (info,) = [(n, dict(labels)) for (n, labels) in scrape(api) if n == "jobqueue_build_info"]
    assert info[1]["version"] == metadata.version("jobqueue")
    assert info[1]["python"] == platform.python_version()
    assert sample(scrape(api), "jobqueue_build_info", **info[1]) == 1
