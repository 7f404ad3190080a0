"""Every connection speaks RESP2 whatever redis-py's default (redis-py 8 defaults to RESP3): the replies
read without redis-py's parsing (the recorder's XREAD, read_many's replies) are RESP2-shaped."""

from __future__ import annotations

import pytest
import redis

from jobqueue import Client, Settings
from jobqueue.broker.redis_io import connect, connect_async

pytestmark = pytest.mark.timeout(30)


def test_a_raw_xread_reply_is_a_list_of_stream_entry_pairs(client: Client) -> None:
    stream = client.queue_keys("wire").events
    client.redis.xadd(stream, {"kind": "enqueued"})
    # The recorder's way: the same connections with XREAD's reply left unparsed.
    unparsed = redis.Redis(connection_pool=client.redis.connection_pool)
    unparsed.set_response_callback("XREAD", lambda response, **options: response)
    raw = unparsed.execute_command("XREAD", "STREAMS", stream, "0-0")
    # RESP3 answers a map {stream: entries}, which made the recorder fail on its first read.
    assert isinstance(raw, list) and raw[0][0] == stream


def test_sync_and_asyncio_clients_ask_for_resp2(settings: Settings) -> None:
    assert connect(settings).connection_pool.connection_kwargs["protocol"] == 2
    assert connect_async(settings).connection_pool.connection_kwargs["protocol"] == 2
