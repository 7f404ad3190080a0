"""GET /api/v1/workers paged and GET /api/v1/workers/{id} on a real Redis: a page reads only its workers'
records, the cursor survives ids with any characters, and a worker whose record expired is left out."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.broker.worker_registry import publish_worker_record
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(60)
READ = {"Authorization": "Bearer k"}
# Ids a user's hostnames and pod names can produce, and worse: the cursor carries them back in a URL.
ODD = ["a&after=zzz", "b/../x", "c?limit=1", "d\u202eevil", "e" * 253, "f#frag", "g%2F", "b" + "h" * 1000]


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings, ApiSettings(keys=SecretStr("k:read"))), raise_server_exceptions=False
    ) as c:
        yield c


def register(client: Client, worker_id: str) -> None:
    info = {"status": "IDLE", "queues": "default", "concurrency": 2, "host": "h", "pid": 1}
    publish_worker_record(client.redis, client.global_keys, worker_id, info, ttl_seconds=60)


def test_pages_follow_the_cursor_through_every_worker_once(api: TestClient, client: Client) -> None:
    for worker_id in ODD:
        register(client, worker_id)
    seen: list[str] = []
    after: str | None = None
    while True:
        params = {"limit": "3", **({"after": after} if after is not None else {})}
        r = api.get("/api/v1/workers", params=params, headers=READ)
        assert r.status_code == 200, r.text
        assert r.headers["X-Total-Count"] == str(len(ODD))
        seen += [w["id"] for w in r.json()]
        after = r.headers.get("X-Next-Cursor")
        if after is None:
            assert "Link" not in r.headers
            break
        # The Link header's cursor is quoted: it reads back as the same id.
        assert unquote(r.headers["Link"].split("after=")[1].split("&limit=")[0]) == after
    assert seen == sorted(ODD)
    # Without paging parameters, one response still holds the whole (small) fleet.
    assert [w["id"] for w in api.get("/api/v1/workers", headers=READ).json()] == sorted(ODD)


def test_one_worker_by_id_and_an_expired_record(api: TestClient, client: Client) -> None:
    register(client, "pod-1")
    register(client, "gone")
    client.redis.delete(client.global_keys.worker("gone"))  # its state hash expired; the entry lingers
    body = api.get("/api/v1/workers/pod-1", headers=READ).json()
    assert (body["id"], body["status"], body["concurrency"]) == ("pod-1", "IDLE", 2)
    assert api.get("/api/v1/workers/gone", headers=READ).status_code == 404
    assert api.get(f"/api/v1/workers/{'x' * 254}", headers=READ).status_code == 422
    r = api.get("/api/v1/workers", headers=READ)
    assert [w["id"] for w in r.json()] == ["pod-1"] and r.headers["X-Total-Count"] == "2"


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1001"}, {"after": ""}, {"limit": "x"}])
def test_bad_paging_parameters_are_a_422_naming_the_field(api: TestClient, params: dict[str, str]) -> None:
    r = api.get("/api/v1/workers", params=params, headers=READ)
    assert r.status_code == 422
    assert next(iter(params)) in r.text
