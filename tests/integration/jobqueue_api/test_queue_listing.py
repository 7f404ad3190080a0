"""GET /api/v1/queues paged, and /metrics, on a real Redis: both read every queue of a page or scrape in a
few batched round trips (broker/queue_overview.py), and must say exactly what the one-queue reads say."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.live_state import queue_counters
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(90)
READ = {"Authorization": "Bearer k"}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ApiSettings(keys=SecretStr("k:admin")))) as client:
        yield client


def _fill(client: Client, n: int) -> list[str]:
    """n queues with different states: 1-4 ready tasks over two priorities, a delayed one in every third."""
    names = [f"q{i:03d}" for i in range(n)]
    requests = []
    for i, name in enumerate(names):
        requests += [
            make_request("add", [j], queue=name, priority="high" if j % 2 else "low")
            for j in range(i % 4 + 1)
        ]
        if i % 3 == 0:
            requests.append(make_request("add", [0], queue=name, countdown=300))
    client.enqueue_many(requests)
    return names


def test_pages_follow_the_cursor_and_match_the_one_queue_reads(api: TestClient, client: Client) -> None:
    names = _fill(client, 25)
    seen: list[dict[str, object]] = []
    after = None
    pages = 0
    while True:
        query = {"limit": 10, **({"after": after} if after else {})}
        r = api.get("/api/v1/queues", params=query, headers=READ)
        assert r.status_code == 200, r.text
        assert r.headers["X-Total-Count"] == "25"
        seen += r.json()
        pages += 1
        after = r.headers.get("X-Next-Cursor")
        if after is None:
            assert "Link" not in r.headers
            break
        assert r.headers["Link"] == f'</api/v1/queues?after={after}&limit=10>; rel="next"'
    assert pages == 3
    assert [q["name"] for q in seen] == names
    for body in seen:
        one = api.get(f"/api/v1/queues/{body['name']}", headers=READ).json()
        # The age grows between the two reads; everything else is the same.
        assert one.pop("oldest_ready_age_seconds") == pytest.approx(
            body.pop("oldest_ready_age_seconds"), abs=5
        )
        assert body == one
    # Without parameters: the first page of 100 (all 25 here), as before paging for small deployments.
    assert [q["name"] for q in api.get("/api/v1/queues", headers=READ).json()] == names


def test_a_cursor_past_a_deleted_queue_still_finds_the_next_names(api: TestClient, client: Client) -> None:
    _fill(client, 5)
    r = api.get("/api/v1/queues", params={"after": "q001x", "limit": 2}, headers=READ)
    assert [q["name"] for q in r.json()] == ["q002", "q003"]
    assert r.headers["X-Next-Cursor"] == "q003"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=99999999999999999999999999999", "limit"),
        ("limit=abc", "limit"),
        ("after=bad%00name", "after"),
        ("after=%ED%A0%80", "after"),
        ("after=" + "a" * 5000, "after"),
    ],
)
def test_bad_paging_parameters_are_a_422_naming_the_field(api: TestClient, query: str, field: str) -> None:
    r = api.get(f"/api/v1/queues?{query}", headers=READ)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field


def test_metrics_say_what_the_one_queue_reads_say(api: TestClient, client: Client) -> None:
    names = _fill(client, 12)
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(api.get("/metrics").text)
        for s in family.samples
    }
    for name in names:
        depth = client.queue_depth(name)
        for priority, n in depth.ready.items():
            assert (
                samples[("jobqueue_queue_depth", frozenset({("queue", name), ("priority", priority)}))] == n
            )
        label = frozenset({("queue", name)})
        assert samples[("jobqueue_queue_delayed", label)] == depth.delayed
        assert samples[("jobqueue_queue_in_flight", label)] == depth.in_flight
        assert samples[("jobqueue_dead_letters", label)] == depth.dead
        assert samples[("jobqueue_tasks_enqueued_total", label)] == queue_counters(client, name).count(
            "enqueued"
        )
        age = client.oldest_ready_age(name)
        assert samples[("jobqueue_queue_oldest_task_age_seconds", label)] == pytest.approx(age or 0.0, abs=2)
