"""Deduplication inside enqueue.lua, against a real Redis server."""

from __future__ import annotations

import threading
import time

import pytest

from jobqueue import App, Client, TaskStatus
from jobqueue.broker.completion_calls import build_completion
from jobqueue.broker.duplicates import find_duplicate
from jobqueue.broker.leases import Job, Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.redis_io import run_script
from jobqueue.cli import main as cli

pytestmark = pytest.mark.timeout(30)


def fetch_one(client: Client) -> Job:
    [job] = parse_fetch(
        "default", run_script(client.redis, build_fetch(client.settings, "default", 1, "w1"))
    ).jobs
    return job


def succeed(client: Client, job: Job) -> None:
    outcome = Outcome(job.id, job.token, OutcomeKind.SUCCESS, "1")
    assert run_script(
        client.redis, build_completion(client.settings, job, outcome, None, worker_id="w1")
    ) == [1]


def test_same_unique_task_twice_gives_the_same_id_and_one_task(client: Client) -> None:
    first = client.enqueue("report", [1], {"region": "eu"}, unique=True)
    second = client.enqueue("report", [1], {"region": "eu"}, unique=True)
    assert second.id == first.id
    assert (first.deduplicated, second.deduplicated) == (False, True)
    assert client.queue_depth("default").total_ready == 1
    different = client.enqueue("report", [2], {"region": "eu"}, unique=True)
    assert different.id != first.id


def test_eight_threads_enqueueing_the_same_unique_task_create_exactly_one(client: Client) -> None:
    barrier = threading.Barrier(8)
    ids: list[str] = []
    lock = threading.Lock()

    def enqueue() -> None:
        barrier.wait()
        handle = client.enqueue("report", [7], unique=True)
        with lock:
            ids.append(handle.id)

    threads = [threading.Thread(target=enqueue) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert client.queue_depth("default").total_ready == 1
    assert client.redis.hget(client.queue_keys("default").stats, "deduplicated") == "7"


def test_running_task_still_deduplicates_and_completion_allows_rerun(client: Client) -> None:
    first = client.enqueue("sync", unique=True, unique_rerun=True)
    job = fetch_one(client)
    assert client.enqueue("sync", unique=True, unique_rerun=True).id == first.id  # while RUNNING
    succeed(client, job)
    again = client.enqueue("sync", unique=True, unique_rerun=True)
    assert again.id != first.id and not again.deduplicated
    assert client.get_task(again.id).status == TaskStatus.QUEUED


def test_without_rerun_a_completed_task_is_returned_until_the_ttl(client: Client) -> None:
    first = client.enqueue("sync", unique=True)
    succeed(client, fetch_one(client))
    again = client.enqueue("sync", unique=True)
    assert again.id == first.id and again.deduplicated
    assert again.get().status == TaskStatus.SUCCESS


def test_dedup_key_ttl_is_honoured(client: Client) -> None:
    first = client.enqueue("sync", unique=True, unique_ttl=1)
    assert client.enqueue("sync", unique=True, unique_ttl=1).id == first.id
    time.sleep(1.1)
    later = client.enqueue("sync", unique=True, unique_ttl=1)
    assert later.id != first.id
    assert client.queue_depth("default").total_ready == 2


def test_explicit_unique_key_ignores_arguments_and_cancel_releases_it(client: Client) -> None:
    first = client.enqueue("charge", [10], unique_key="order-42", unique_rerun=True)
    assert client.enqueue("charge", [99], unique_key="order-42", unique_rerun=True).id == first.id
    assert client.cancel(first.id) == "cancelled"
    assert client.enqueue("charge", [99], unique_key="order-42", unique_rerun=True).id != first.id


def test_failed_final_attempt_releases_the_key_when_rerun_is_allowed(client: Client) -> None:
    first = client.enqueue("flaky", unique=True, unique_rerun=True)
    job = fetch_one(client)
    outcome = Outcome(job.id, job.token, OutcomeKind.ERROR, error="ValueError: x")
    assert run_script(
        client.redis, build_completion(client.settings, job, outcome, None, worker_id="w1")
    ) == [3]
    assert client.enqueue("flaky", unique=True, unique_rerun=True).id != first.id


def test_app_task_option_and_per_call_override(client: Client) -> None:
    app = App(settings=client.settings)

    @app.task(unique=True)
    def nightly(day: str) -> str:
        return day

    try:
        a = nightly.enqueue("2026-01-01")
        assert nightly.enqueue("2026-01-01").id == a.id
        b = nightly.enqueue_with(["2026-01-01"], unique=False)
        assert b.id != a.id
    finally:
        app.close()


def test_cli_enqueue_unique_and_depends_on(
    client: Client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", client.settings.redis_url.get_secret_value())
    monkeypatch.setenv("JOBQUEUE_KEY_PREFIX", client.settings.key_prefix)
    assert cli.main(["enqueue", "nightly", "--args", "[1]", "--unique"]) == 0
    assert cli.main(["enqueue", "nightly", "--args", "[1]", "--unique"]) == 0
    first, second = capsys.readouterr().out.split()
    assert first == second
    assert cli.main(["enqueue", "after", "--depends-on", first]) == 0
    child = capsys.readouterr().out.strip()
    assert client.get_task(child).parents == [first]


def test_the_dedup_key_names_its_holders_hash_and_a_key_holding_a_bare_id_still_counts(
    client: Client,
) -> None:
    keys = client.queue_keys("default")
    first = client.enqueue("send", ["a"], unique=True)
    [dedup_key] = client.redis.keys(f"{client.settings.key_prefix}:*:unique:*")
    # The holder's task hash key, made by the key module: the script reads it without building a key.
    assert client.redis.get(dedup_key) == keys.task(first.id)
    # A dedup key written before that layout holds the bare id: still understood.
    client.redis.set(dedup_key, first.id)
    second = client.enqueue("send", ["a"], unique=True)
    assert second.id == first.id and second.deduplicated


def test_a_folded_enqueue_is_recorded_for_as_long_as_its_dedup_key(client: Client) -> None:
    first = client.enqueue("send", ["a@example.com"], unique=True, unique_ttl=30)
    again = client.enqueue("send", ["a@example.com"], unique=True, unique_ttl=30)
    assert (again.id, again.deduplicated) == (first.id, True)
    assert first.enqueue_id == first.id and again.enqueue_id != first.id
    answer = find_duplicate(client, again.enqueue_id)
    assert (answer.duplicate, answer.duplicate_of, answer.duplicate_of_status) == (
        True,
        first.id,
        TaskStatus.QUEUED,
    )
    folded_key = client.queue_keys("default").folded(again.enqueue_id)
    assert 0 < client.redis.ttl(folded_key) <= 30
    # Once the holder finished and its record expired, the answer still names it (its status is gone).
    succeed(client, fetch_one(client))
    client.redis.delete(client.queue_keys("default").task(first.id))
    assert find_duplicate(client, again.enqueue_id).duplicate_of_status is None
