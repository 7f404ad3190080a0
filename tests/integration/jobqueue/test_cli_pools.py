"""``jobqueue pools ...`` against a real API (uvicorn, local backend, real Redis): JSON and tables, and
API errors as one line naming the field with exit 2."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from jq_testing import wait_until
from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.broker.worker_pools import PoolStore
from jobqueue.cli.main import main
from jobqueue.cli.pools import table
from jobqueue.embedded.redis_server import free_port
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def api_url(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # No access log: the API runs in this process, and its lines would land in the CLI's captured stderr.
    api_settings = ApiSettings(
        keys=SecretStr("admin-key:admin,read-key:read"), pools_backend="local", access_log=False
    )
    app = create_app(settings, api_settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    wait_until(lambda: server.started, 15)
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("JOBQUEUE_API_URL", url)
    monkeypatch.setenv("JOBQUEUE_API_KEY", "admin-key")
    # Prove the CLI goes through the API: a Redis URL nobody listens on.
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    yield url
    server.should_exit = True
    thread.join(15)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = main(["pools", *argv, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_every_command_through_the_api(capsys: pytest.CaptureFixture[str], client: Client) -> None:
    created = run_json(capsys, "create", "mail", "--queues", "mail, bulk", "--concurrency", "3")
    assert (created["queues"], created["concurrency"], created["replicas"]) == (["mail", "bulk"], 3, 1)
    assert [p["name"] for p in run_json(capsys, "list")["pools"]] == ["mail"]
    auto = run_json(capsys, "autoscale", "mail", "--min", "2", "--max", "7", "--target", "4")["autoscaling"]
    assert auto == {"enabled": True, "min_replicas": 2, "max_replicas": 7, "target_tasks_per_replica": 4}
    scaled = run_json(capsys, "scale", "mail", "5")
    assert scaled["replicas"] == 5 and scaled["autoscaling"]["enabled"] is False
    run_json(capsys, "autoscale", "mail", "--min", "2", "--max", "7")
    off = run_json(capsys, "autoscale", "mail", "--off")["autoscaling"]
    assert off["enabled"] is False and off["max_replicas"] == 7  # --off keeps the bounds
    assert run_json(capsys, "show", "mail")["generation"] == 5
    kinds = [e["kind"] for e in run_json(capsys, "events", "mail")["events"]]
    assert kinds[-1] == "Created" and kinds.count("AutoscalingChanged") == 3

    assert main(["pools", "list"]) == 0
    human = capsys.readouterr().out
    assert human.startswith("backend: local\nNAME") and "mail" in human and "mail,bulk" in human
    assert main(["pools", "events", "mail"]) == 0
    assert "AutoscalingChanged" in capsys.readouterr().out

    assert run_json(capsys, "delete", "mail") == {"deleted": "mail"}
    assert PoolStore(client).all() == []


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["create", "Bad_Name", "--queues", "q"], "name"),
        (["create", "ok", "--queues", "bad queue"], "queues.0"),
        (["create", "ok", "--queues", "q", "--concurrency", "0"], "concurrency"),
        (["create", "ok", "--queues", "a\udcffb"], "queues.0"),  # an undecodable byte of the shell
        (["scale", "nope", "2"], "name"),
        (["autoscale", "nope", "--off"], "name"),
        (["autoscale", "x", "--min", "5", "--max", "2"], None),
    ],
)
def test_errors_are_one_line_naming_the_field(
    capsys: pytest.CaptureFixture[str], argv: list[str], field: str | None
) -> None:
    if argv[:2] == ["autoscale", "x"]:
        run_json(capsys, "create", "x", "--queues", "q")
    assert main(["pools", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    if field is not None:
        assert f"(field: {field})" in err[0], err


def test_read_key_cannot_change(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_API_KEY", "read-key")
    assert main(["pools", "create", "mail", "--queues", "q"]) == 2
    assert "403" in capsys.readouterr().err
    assert main(["pools", "list"]) == 0


def test_table_pads_columns() -> None:
    assert table(["A", "BB"], [("xyz", None), ("1", 2)]) == "A    BB\nxyz  -\n1    2"
