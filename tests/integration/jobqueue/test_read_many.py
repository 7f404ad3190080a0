"""raw_reads.read_many / read_many_async: many read-only commands in one round trip, replies parsed by a
hiredis reader of our own, on a real Redis server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from jobqueue.broker.raw_reads import read_many, read_many_async
from jobqueue.broker.redis_io import connect, connect_async
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.errors import BrokerUnavailable
from jobqueue.settings import Settings

pytestmark = pytest.mark.timeout(60)


def test_replies_in_order_with_nil_error_and_unicode_in_place(settings: Settings) -> None:
    conn = connect(settings)
    try:
        key = f"{settings.key_prefix}:rm"
        conn.rpush(f"{key}:list", "é\u2603", "b")
        conn.set(f"{key}:string", "x")
        conn.hset(f"{key}:hash", mapping={"f": "1"})
        commands = [
            ("LLEN", f"{key}:list"),
            ("LINDEX", f"{key}:list", 0),
            ("LINDEX", f"{key}:missing", 0),
            ("LLEN", f"{key}:string"),  # WRONGTYPE: an error reply, returned in its place
            ("HGETALL", f"{key}:hash"),
        ] * 3000
        replies = read_many(conn, commands)
        assert len(replies) == 15000
        assert replies[:3] == [2, "é\u2603", None]
        assert isinstance(replies[3], ResponseError) and "WRONGTYPE" in str(replies[3])
        assert replies[4] == ["f", "1"]
        # The connection is in step afterwards (every reply was consumed).
        assert conn.ping() is True and read_many(conn, [("LLEN", f"{key}:list")]) == [2]
        assert asyncio.run(_read_async(settings, commands[:5]))[:3] == [2, "é\u2603", None]
    finally:
        conn.close()


async def _read_async(settings: Settings, commands: list[tuple[object, ...]]) -> list[object]:
    conn = connect_async(settings)
    try:
        return await read_many_async(conn, commands)
    finally:
        await conn.aclose()


def test_a_restarted_server_is_read_again_and_a_stopped_one_is_broker_unavailable(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    conn = connect(Settings(redis_url=server.url))
    try:
        assert read_many(conn, [("PING",)]) == ["PONG"]
        server.stop()
        server.start()  # the pooled connection is dead: re-sent on a new one
        assert read_many(conn, [("PING",), ("ECHO", "x")]) == ["PONG", "x"]
        server.stop()
        with pytest.raises(BrokerUnavailable):
            read_many(conn, [("PING",)])
    finally:
        conn.close()
        server.stop()
