"""The producer's wire path (jobqueue.broker.script_wire) against a real Redis server of its own: this module
flushes scripts and kills connections, which must not disturb other tests sharing the session's server."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from jobqueue import Client, Settings, TaskStatus
from jobqueue.broker.batch_enqueue import plan_enqueue
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.redis_io import script_sha
from jobqueue.broker.script_wire import ScriptWire, pack_call
from jobqueue.broker.scripts import ScriptCall
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.errors import BrokerUnavailable, JobQueueError
from jobqueue.keys import QueueKeys

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("wire-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def wire_client(own_server: RedisServer) -> Iterator[Client]:
    c = Client(Settings(redis_url=own_server.url, key_prefix=f"t{uuid.uuid4().hex[:10]}"))
    yield c
    c.close()


def _ready(client: Client) -> int:
    return client.queue_depth("default").ready["medium"]


def _wire_client_ids(client: Client) -> list[int]:
    """CLIENT IDs of the server connections other than the one asking."""
    own = client.redis.client_id()
    return [int(c["id"]) for c in client.redis.client_list() if int(c["id"]) != own]


def test_a_batch_is_many_calls_in_flight_in_request_order(wire_client: Client) -> None:
    handles = wire_client.enqueue_many([make_request("a", [i]) for i in range(1200)])  # 3 calls
    assert len({h.id for h in handles}) == 1200
    keys = QueueKeys(wire_client.settings.key_prefix, "default")
    assert wire_client.redis.lrange(keys.ready("medium"), 0, -1) == [h.id for h in handles]
    assert wire_client.redis.hget(keys.stats, "enqueued") == "1200"


def test_a_batch_looks_up_existing_tasks_once_per_call_not_per_task(wire_client: Client) -> None:
    wire_client.redis.config_resetstat()
    wire_client.enqueue_many([make_request("a", [i]) for i in range(1200)])
    stats = wire_client.redis.info("commandstats")
    assert "cmdstat_hget" not in stats
    assert stats["cmdstat_evalsha"]["calls"] == 3
    assert stats["cmdstat_exists"]["calls"] == 3


def test_threads_enqueueing_at_once_each_get_a_connection_of_their_own(wire_client: Client) -> None:
    def produce(worker: int) -> list[str]:
        ids = [wire_client.enqueue("a", [worker, i]).id for i in range(40)]
        ids += [h.id for h in wire_client.enqueue_many([make_request("a", [worker, i]) for i in range(60)])]
        return ids

    with ThreadPoolExecutor(max_workers=8) as pool:
        produced = [task_id for ids in pool.map(produce, range(8)) for task_id in ids]
    assert len(set(produced)) == 800
    assert _ready(wire_client) == 800
    assert 1 <= len(wire_client._wire._idle) <= 8


def test_scripts_unknown_to_the_server_are_loaded(wire_client: Client) -> None:
    wire_client.enqueue("a", [0])
    wire_client.redis.script_flush()
    wire_client.enqueue("a", [1])  # one call: NOSCRIPT, load, run
    wire_client.redis.script_flush()
    wire_client.enqueue_many([make_request("a", [i]) for i in range(2, 1200)])  # every call of a batch
    assert _ready(wire_client) == 1200


def test_a_killed_connection_is_replaced_without_enqueueing_twice(wire_client: Client) -> None:
    wire_client.enqueue("a", [0])
    for client_id in _wire_client_ids(wire_client):
        wire_client.redis.client_kill_filter(_id=client_id)
    wire_client.enqueue("a", [1])
    wire_client.enqueue_many([make_request("a", [i]) for i in range(2, 10)])
    assert _ready(wire_client) == 10


def test_an_error_reply_is_raised_after_every_reply_is_read(wire_client: Client) -> None:
    wire = ScriptWire(wire_client.redis)
    try:
        good = plan_enqueue(wire_client.settings, [make_request("a", [i]) for i in range(3)], 1).calls
        bad = ScriptCall("enqueue_many", (), ("not a number", "x"))  # the script fails on its arguments
        with pytest.raises(JobQueueError, match="Redis error"):
            wire.run([good[0], bad, good[1], good[2]])
        # The calls after the failing one ran, and the connection is still in step for the next call.
        assert _ready(wire_client) == 3
        assert wire.run([good[0]]) == [["QUEUED"]]
    finally:
        wire.close()


def test_an_exception_while_building_the_next_call_closes_the_connection(wire_client: Client) -> None:
    wire = ScriptWire(wire_client.redis)
    calls = plan_enqueue(wire_client.settings, [make_request("a", [i]) for i in range(2)], 1).calls

    def failing() -> Iterator[ScriptCall]:
        yield calls[0]
        raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            wire.run(failing())
        # The reply of the first call was never read: a reused connection would hand it to this call.
        assert wire.run([calls[1]]) == [["QUEUED"]]
        assert _ready(wire_client) == 2
    finally:
        wire.close()


def test_one_call_error_reply_is_raised_and_the_connection_stays_in_step(wire_client: Client) -> None:
    wire = ScriptWire(wire_client.redis)
    try:
        [good] = plan_enqueue(wire_client.settings, [make_request("a", [0])]).calls
        with pytest.raises(JobQueueError, match="Redis error"):
            wire.run_one(ScriptCall("enqueue_many", (), ("not a number", "x")))
        assert wire.run_one(good) == ["QUEUED"]
        assert _ready(wire_client) == 1
    finally:
        wire.close()


def test_one_call_interrupted_between_write_and_read_closes_the_connection(
    wire_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire = ScriptWire(wire_client.redis)
    calls = plan_enqueue(wire_client.settings, [make_request("a", [i]) for i in range(2)], 1).calls
    try:
        assert wire.run_one(calls[0]) == ["QUEUED"]
        [connection] = wire._idle
        with monkeypatch.context() as patch:
            patch.setattr(connection, "read_response", lambda: (_ for _ in ()).throw(KeyboardInterrupt))
            with pytest.raises(KeyboardInterrupt):
                wire.run_one(calls[1])  # written (and run), its reply left unread
        # A connection reused as it was would return that stale reply (QUEUED) to the next call.
        [later] = plan_enqueue(wire_client.settings, [make_request("a", [2], countdown=60)]).calls
        assert wire.run_one(later) == ["DELAYED"]
        assert _ready(wire_client) == 2
    finally:
        wire.close()


def _enqueue_in_child(client: Client) -> None:
    wire = client._wire
    parents = list(wire._idle)
    client.enqueue("a", ["from the child"])
    # The child made a connection of its own rather than writing on the parent's socket.
    assert wire._idle and all(c not in parents for c in wire._idle)


def test_a_forked_child_does_not_share_the_parents_connections(wire_client: Client) -> None:
    wire_client.enqueue("a", [0])  # the parent now keeps a wire connection
    # A fork start copies the client into the child as it is (nothing pickled).
    process = multiprocessing.get_context("fork").Process(target=_enqueue_in_child, args=(wire_client,))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    wire_client.enqueue("a", [2])  # the parent's connection is still in step
    assert _ready(wire_client) == 3
    ids = wire_client.redis.lrange(
        QueueKeys(wire_client.settings.key_prefix, "default").ready("medium"), 0, -1
    )
    assert {wire_client.get_task(i).status for i in ids} == {TaskStatus.QUEUED}


def test_close_returns_the_kept_connections_to_the_pool(own_server: RedisServer) -> None:
    conn = redis.Redis.from_url(own_server.url, decode_responses=True)
    client = Client(Settings(redis_url=own_server.url, key_prefix=f"t{uuid.uuid4().hex[:10]}"), conn)
    client.enqueue("a", [0])
    client.close()
    client.enqueue("a", [1])  # reconnects after close, as redis-py's own path does
    assert client.queue_depth("default").ready["medium"] == 2
    client.close()


def test_an_unreachable_server_is_reported_as_broker_unavailable(tmp_path: Path) -> None:
    """As on redis-py's own path: a refused connection is a BrokerUnavailable, whether the wire already
    held a connection (broken now) or has to make one."""
    server = RedisServer(tmp_path / "redis").start()
    client = Client(Settings(redis_url=server.url, key_prefix=f"t{uuid.uuid4().hex[:10]}"))
    try:
        client.enqueue("a", [0])
        server.stop()
        with pytest.raises(BrokerUnavailable):
            client.enqueue("a", [1])  # the kept connection is broken
        with pytest.raises(BrokerUnavailable):
            client.enqueue_many([make_request("a", [i]) for i in range(3)])  # reconnecting is refused
        client.close()  # no connection kept: the next enqueue must make one, which is refused
        with pytest.raises(BrokerUnavailable):
            client.enqueue("a", [2])
    finally:
        client.close()


@pytest.mark.parametrize(
    "args",
    [
        ("x", 0, -1, 10**30, 2.5, 0.1, b"\x00raw", "nul\x00inside", "\u00e9\U0001f600", "", "a" * 70_000),
        (1e300, -0.0, float("inf")),
    ],
)
def test_a_call_is_packed_exactly_as_redis_py_packs_it(args: tuple[object, ...]) -> None:
    connection = redis.Connection()
    call = ScriptCall("enqueue_many", ("k1", "{q}k2"), args)
    expected = b"".join(
        connection.pack_command("EVALSHA", script_sha("enqueue_many"), 2, "k1", "{q}k2", *args)
    )
    assert b"".join(pack_call(connection, call)) == expected


@pytest.mark.parametrize(("value", "error"), [("lone \udc80", UnicodeEncodeError), (True, redis.DataError)])
def test_a_value_hiredis_refuses_fails_as_it_did_through_redis_py(
    value: object, error: type[Exception]
) -> None:
    call = ScriptCall("enqueue_many", ("k",), ("ok", value))
    with pytest.raises(error):
        pack_call(redis.Connection(), call)


def test_a_connection_with_another_encoding_is_packed_by_redis_py() -> None:
    connection = redis.Connection(encoding="latin-1")
    call = ScriptCall("enqueue_many", ("k",), ("\u00e9",))
    assert b"".join(pack_call(connection, call)).endswith(b"$1\r\n\xe9\r\n")
