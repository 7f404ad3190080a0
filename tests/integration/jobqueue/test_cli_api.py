"""``jobqueue submit / status / cancel / queues / dlq`` against a real API served by uvicorn (real Redis,
a real worker, and a real PostgreSQL record for ``status --history``).

The CLI gets only the API's URL and a key: no Redis settings in its environment.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from jq_testing import wait_until
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from record_helpers import drain, make_recorder

from jobqueue import Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.cli import api as cli_api
from jobqueue.cli.main import main
from jobqueue.embedded.redis_server import free_port
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(60)

KEYS = "admin-key:admin,read-key:read"


@pytest.fixture
def api_url(settings: Settings, database_url: str) -> Iterator[str]:
    """A real API (uvicorn, in a thread) on a free loopback port, with the record configured."""
    with_db = settings.model_copy(update={"database_url": SecretStr(database_url)})
    app = create_app(with_db, ApiSettings(keys=SecretStr(KEYS)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    wait_until(lambda: server.started, 15)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


@pytest.fixture(autouse=True)
def env(api_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_API_URL", api_url)
    monkeypatch.setenv("JOBQUEUE_API_KEY", "admin-key")
    # Prove the CLI goes through the API: a Redis URL nobody listens on.
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    return capsys.readouterr().err


def test_submit_status_queues_and_cancel(capsys: pytest.CaptureFixture[str]) -> None:
    [task_id] = run(capsys, "submit", "add", "--args", "[1, 2]", "--priority", "high", "--countdown", "60")[
        "ids"
    ]
    status = run(capsys, "status", task_id)
    assert (status["id"], status["status"], status["priority"]) == (task_id, "DELAYED", "high")
    [queue] = run(capsys, "queues")
    assert (queue["name"], queue["delayed"]) == ("default", 1)
    assert run(capsys, "queues", "default")["delayed"] == 1
    assert run(capsys, "cancel", task_id, "--reason", "other") == {"id": task_id, "outcome": "cancelled"}
    assert run(capsys, "status", task_id)["status"] == "CANCELLED"


def test_queues_follows_the_pages(
    capsys: pytest.CaptureFixture[str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(settings)
    try:
        client.enqueue_many([make_request("add", [1, 1], queue=f"q{i}") for i in range(5)])
    finally:
        client.close()
    monkeypatch.setattr(cli_api, "_QUEUE_PAGE", 2)  # three pages: 2, 2, 1
    assert [q["name"] for q in run(capsys, "queues")] == [f"q{i}" for i in range(5)]


def test_api_errors_print_the_message_and_field(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    err = fails(capsys, "submit", "add", "--countdown", "-5")
    assert "HTTP 422 invalid" in err and "(field: countdown)" in err
    err = fails(capsys, "status", "default.0123456789abcdef0123456789abcdef")
    assert "HTTP 404 not_found" in err and "(field: task_id)" in err
    assert "HTTP 401 unauthorized" in fails(capsys, "queues", "--key", "wrong")
    # A read key may look but not cancel.
    assert "HTTP 403 forbidden" in fails(
        capsys, "cancel", "default.0123456789abcdef0123456789abcdef", "--key", "read-key"
    )
    assert "cannot reach" in fails(capsys, "queues", "--api", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("JOBQUEUE_API_URL")
    assert "JOBQUEUE_API_URL" in fails(capsys, "submit", "add")


def test_dlq_through_the_api(capsys: pytest.CaptureFixture[str], start_worker: Callable[..., Any]) -> None:
    start_worker()
    [task_id] = run(capsys, "submit", "fail_with", "--args", '["value"]')["ids"]
    wait_until(lambda: run(capsys, "queues", "default")["dead_letters"] == 1, 20)
    [dead] = run(capsys, "dlq", "list")
    assert (dead["id"], dead["dead_letter_reason"]) == (task_id, "not_retryable")
    assert run(capsys, "dlq", "stats")["by_task"] == {"fail_with": 1}
    assert run(capsys, "dlq", "replay", task_id, "--reset") == {"id": task_id, "status": "QUEUED"}
    wait_until(lambda: run(capsys, "queues", "default")["dead_letters"] == 1, 20)
    assert run(capsys, "dlq", "purge") == {"purged": 1}


def test_status_history_from_the_record(
    capsys: pytest.CaptureFixture[str],
    client: Client,
    pg_pool: ConnectionPool,
    start_worker: Callable[..., Any],
) -> None:
    start_worker()
    [task_id] = run(capsys, "submit", "add", "--args", "[2, 2]")["ids"]
    wait_until(lambda: run(capsys, "status", task_id)["status"] == "SUCCESS", 20)
    drain(make_recorder(client, pg_pool))
    history = run(capsys, "status", task_id, "--history")
    assert [e["event"] for e in history["events"]] == ["enqueued", "started", "succeeded"]
    assert history["task"]["result"] == 4
