"""Generated hostile JSON through every stage on real servers: REST and Python enqueue -> a real worker
(``echo``) -> its result in Redis -> the recorder -> the record, read back through the API.

A payload that breaks the storable-payload rule must be refused at the boundary naming a path inside
``args``; any other must come back equal from Redis and from the record, and never produce a 500 or a
stuck task. The budget is the hypothesis profile (payload_strategies: a few examples in ``make test``,
many in ``make fuzz``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from jq_testing import wait_until
from payload_strategies import PROFILE, json_values
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from record_helpers import drain, make_recorder

from jobqueue import Client, PayloadTooLarge, Settings, ValidationError
from jobqueue.record.recorder import Recorder
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

# A few seconds an example at worst (a real worker and recorder on a busy machine); make fuzz runs 2000.
pytestmark = pytest.mark.timeout(max(300, PROFILE.max_examples * 3))

HEADERS = {"Authorization": "Bearer k", "content-type": "application/json"}


def unstorable(value: Any) -> bool:
    """The rule, restated independently of jobqueue.payloads: a NUL or a surrogate in any string."""
    if isinstance(value, str):
        return any(c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, dict):
        return any(unstorable(k) or unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable(v) for v in value)
    return False


def same(a: Any, b: Any) -> bool:
    """JSON equality, numbers compared as numbers: jsonb keeps a number's value, not its spelling
    (1e308 comes back as a 309-digit integer)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.fixture
def stack(
    settings: Settings, database_url: str, pg_pool: ConnectionPool, start_worker: Callable[..., Any]
) -> Iterator[tuple[TestClient, Client, Recorder]]:
    start_worker("--pool", "thread", "--concurrency", "4")
    with_db = settings.model_copy(update={"database_url": SecretStr(database_url)})
    app = create_app(with_db, ApiSettings(keys=SecretStr("k:admin"), max_body_bytes=4 * 1_048_576))
    client = Client(settings)
    with TestClient(app, raise_server_exceptions=False) as api:
        yield api, client, make_recorder(client, pg_pool)
    client.close()


def test_generated_payloads_are_refused_or_round_trip(stack: tuple[TestClient, Client, Recorder]) -> None:
    api, client, recorder = stack
    limit = client.settings.max_payload_bytes
    seen = {"refused": 0, "stored": 0}

    @PROFILE
    @given(json_values())
    def round_trip(value: Any) -> None:
        body = json.dumps({"name": "echo", "args": [value]}).encode()
        rest = api.post("/api/v1/tasks", content=body, headers=HEADERS)
        assert rest.status_code != 500, rest.text
        batch_body = {"tasks": [{"name": "echo", "args": [1]}, {"name": "echo", "args": [value]}]}
        batch = api.post("/api/v1/tasks/batch", content=json.dumps(batch_body).encode(), headers=HEADERS)
        assert batch.status_code == rest.status_code, batch.text
        try:
            handle = client.enqueue("echo", [value])
        except PayloadTooLarge:
            assert rest.status_code == 413, rest.text
            assert len(json.dumps([value], ensure_ascii=False)) > limit * 0.9
            return
        except ValidationError as exc:
            assert unstorable(value), exc
            assert exc.field.startswith("args"), exc
            assert rest.status_code == 422 and rest.json()["field"].startswith("args"), rest.text
            assert batch.json()["field"].startswith("tasks[1].args"), batch.text
            seen["refused"] += 1
            return
        assert not unstorable(value)
        assert rest.status_code == 201, rest.text
        ids = [rest.json()["ids"][0], handle.id, batch.json()["ids"][1]]
        seen["stored"] += 1

        def done() -> bool:
            return all(
                api.get(f"/api/v1/tasks/{i}", headers=HEADERS).json()["status"] == "SUCCESS" for i in ids
            )

        wait_until(done, 30, interval=0.05)
        for task_id in ids:
            live = api.get(f"/api/v1/tasks/{task_id}", headers=HEADERS)
            assert live.status_code == 200 and live.json()["result"] == value
        drain(recorder)
        found = api.get("/api/v1/tasks?name=echo&limit=1000", headers=HEADERS)
        assert found.status_code == 200, found.text
        recorded = {item["id"]: item for item in found.json()["items"]}
        small = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()) <= (
            client.settings.max_event_result_bytes
        )
        for task_id in ids:
            assert same(recorded[task_id]["args"], [value])
            # Results larger than an event carries stay in Redis only (docs/guarantees.md).
            assert same(recorded[task_id]["result"], value) if small else recorded[task_id]["result"] is None

    round_trip()
    assert recorder.stats.rejected == 0
    assert seen["refused"] and seen["stored"], seen  # the strategy reaches both sides of the rule
