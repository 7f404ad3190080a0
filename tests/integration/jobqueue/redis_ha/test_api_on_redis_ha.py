"""The REST API on Sentinel and on Cluster (real servers): submit to queues on every shard, list the
queues with their depths, and serve /metrics for all of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from redis_topologies import ClusterTopology, SentinelTopology, ha_settings

from jobqueue import Client, Settings
from jobqueue.keys import QueueKeys
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(120)

ADMIN = {"Authorization": "Bearer admin-key"}


@pytest.fixture(params=["sentinel", "cluster"])
def settings(request: pytest.FixtureRequest) -> Settings:
    topology: SentinelTopology | ClusterTopology = request.getfixturevalue(f"{request.param}_topology")
    return ha_settings(topology.url)


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, ApiSettings(keys=SecretStr("admin-key:admin")))
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


def queues_of_three_slots(settings: Settings) -> list[str]:
    """Three queue names whose keys hash to three different thirds of the slot space (on the test cluster,
    three different primaries; on Sentinel simply three queues)."""
    from redis.crc import key_slot  # noqa: PLC0415 - only here

    found: dict[int, str] = {}
    for i in range(1000):
        third = key_slot(QueueKeys(settings.key_prefix, f"api{i}").ready("high").encode()) * 3 // 16384
        found.setdefault(third, f"api{i}")
        if len(found) == 3:
            return [found[t] for t in sorted(found)]
    raise AssertionError(found)


def test_submit_list_queues_and_metrics_across_shards(api: TestClient, settings: Settings) -> None:
    queues = queues_of_three_slots(settings)
    tasks = [{"name": "add", "args": [i, i], "queue": q} for i, q in enumerate(queues) for _ in range(i + 1)]
    r = api.post("/api/v1/tasks/batch", json={"tasks": tasks}, headers=ADMIN)
    assert r.status_code == 201, r.text
    listed = {q["name"]: q for q in api.get("/api/v1/queues", headers=ADMIN).json()}
    assert {q: listed[q]["ready"]["medium"] for q in queues} == {queues[0]: 1, queues[1]: 2, queues[2]: 3}
    for queue in queues:
        assert api.get(f"/api/v1/queues/{queue}", headers=ADMIN).status_code == 200
    metrics = api.get("/metrics", headers=ADMIN)
    assert metrics.status_code == 200, metrics.text[:500]
    assert all(f'queue="{q}"' in metrics.text for q in queues)
    client = Client(settings)
    try:
        assert all(client.queue_depth(q).total_ready == n for q, n in zip(queues, (1, 2, 3), strict=True))
    finally:
        client.close()
