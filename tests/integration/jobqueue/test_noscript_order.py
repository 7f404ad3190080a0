"""NOSCRIPT must never reorder an exchange (jobqueue.broker.script_cache), against a real Redis server of
this module's own: it flushes scripts and restarts the server, which must not disturb other tests."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from jq_testing import wait_until

from jobqueue import AsyncClient, Client, Settings, TaskStatus
from jobqueue.broker.batch_enqueue import plan_enqueue
from jobqueue.broker.enqueue import EnqueueRequest, make_request
from jobqueue.broker.redis_io import run_scripts, run_scripts_replies
from jobqueue.broker.script_cache import script_sha
from jobqueue.broker.scripts import SCRIPT_NAMES, ScriptCall, script_source
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.errors import BrokerUnavailable, ScriptCacheLost
from jobqueue.keys import QueueKeys

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("noscript-redis")).start()
    yield server
    server.stop()


@pytest.fixture
def settings(own_server: RedisServer) -> Settings:
    return Settings(redis_url=own_server.url, key_prefix=f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    c = Client(settings)
    yield c
    c.close()


def _admin(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)


def _mixed_batch(parent: str) -> list[EnqueueRequest]:
    """Plain requests (grouped into one call while consecutive) between unique and dependent ones (one call
    each, another script): every kind of call an enqueue_many sends, all onto one ready list."""
    return [
        make_request("a", [0]),
        make_request("a", [1], unique=True),
        make_request("a", [2]),
        make_request("a", [3]),
        make_request("a", [4], depends_on=[parent]),
        make_request("a", [5], unique_key=f"k{uuid.uuid4().hex}"),
        make_request("a", [6]),
    ]


def _ready(client: Client, queue: str = "default") -> list[str]:
    ready: list[str] = client.redis.lrange(
        QueueKeys(client.settings.key_prefix, queue).ready("medium"), 0, -1
    )
    return ready


def _assert_in_request_order(client: Client, parent: str, ids: list[str]) -> None:
    """Every task of _mixed_batch on the ready list in request order (the dependent one waits)."""
    assert client.get_task(ids[4]).status is TaskStatus.PENDING
    assert _ready(client) == [parent, *ids[:4], *ids[5:]]


def _enqueue_batch(client: Client) -> tuple[str, list[str]]:
    parent = client.enqueue("a", ["parent"]).id  # one call alone: it loads what it needs first
    return parent, [h.id for h in client.enqueue_many(_mixed_batch(parent))]


def _partial_cache(settings: Settings, *known: str) -> None:
    """The server's scripts flushed, then only ``known`` loaded again (as a client loading one script on
    its own NOSCRIPT does, or an older jobqueue version sharing some scripts)."""
    admin = _admin(settings)
    try:
        admin.script_flush()
        for name in known:
            admin.script_load(script_source(name))
    finally:
        admin.close()


def test_enqueue_many_after_a_script_flush_keeps_request_order(client: Client) -> None:
    client.enqueue("a", ["warm"])  # the client's connections are open: the flush happens under them
    _clear(client)
    client.redis.script_flush()
    parent, ids = _enqueue_batch(client)
    _assert_in_request_order(client, parent, ids)


def test_enqueue_many_after_a_redis_restart_keeps_request_order(
    own_server: RedisServer, settings: Settings
) -> None:
    client = Client(settings)
    try:
        client.enqueue("a", ["warm"])
        own_server.stop()
        own_server.start()  # no persistence: an empty server, scripts included, on the same port
        parent, ids = _enqueue_batch(client)
        _assert_in_request_order(client, parent, ids)
    finally:
        client.close()


def test_async_enqueue_many_after_a_script_flush_keeps_request_order(client: Client) -> None:
    async def main() -> tuple[str, list[str]]:
        aclient = AsyncClient(client.settings)
        try:
            await aclient.enqueue("a", ["warm"])
            await aclient.redis.delete(QueueKeys(client.settings.key_prefix, "default").ready("medium"))
            await aclient.redis.script_flush()
            parent = (await aclient.enqueue("a", ["parent"])).id
            return parent, [h.id for h in await aclient.enqueue_many(_mixed_batch(parent))]
        finally:
            await aclient.close()

    parent, ids = asyncio.run(main())
    _assert_in_request_order(client, parent, ids)


def test_a_new_connection_loads_every_script_before_its_first_call(client: Client) -> None:
    client.redis.script_flush()
    client.redis.connection_pool.disconnect()
    client.queue_depth("default")  # any command: the connection it opens loads the scripts
    assert client.redis.script_exists(*(script_sha(name) for name in SCRIPT_NAMES)) == [True] * len(
        SCRIPT_NAMES
    )


def test_one_call_meeting_noscript_loads_every_script(client: Client) -> None:
    client.enqueue("a", ["warm"])
    client.redis.script_flush()
    client.enqueue("a", ["alone"])  # NOSCRIPT on a live connection: every script loaded, not only its own
    assert all(client.redis.script_exists(*(script_sha(name) for name in SCRIPT_NAMES)))


def _plan(client: Client, requests: list[EnqueueRequest]) -> tuple[list[ScriptCall], list[str]]:
    """The script calls of ``requests`` and their task ids."""
    plan = plan_enqueue(client.settings, requests)
    return plan.calls, [task_id for _, _, task_id in plan.slots]


def _clear(client: Client, queue: str = "default") -> None:
    client.redis.delete(QueueKeys(client.settings.key_prefix, queue).ready("medium"))


def test_a_call_behind_a_later_call_on_its_keys_is_ended_not_rerun(client: Client) -> None:
    """A half-loaded cache: the unique request's script is missing, the plain one's is known. The plain
    request after it runs; re-running the unique one would put it behind, so it ends ScriptCacheLost."""
    calls, ids = _plan(client, [make_request("a", [0], unique=True), make_request("a", [1])])
    assert calls[0].script != calls[1].script
    client.redis.ping()  # the pool's connection is open: no reconnect will load anything
    _partial_cache(client.settings, calls[1].script)
    replies = run_scripts_replies(client.redis, calls)
    assert isinstance(replies[0], ScriptCacheLost) and not isinstance(replies[1], Exception)
    assert _ready(client) == [ids[1]]  # never [1, 0]
    _clear(client)
    calls, _ = _plan(client, [make_request("a", [2], unique=True), make_request("a", [3])])
    client.redis.ping()
    _partial_cache(client.settings, calls[1].script)
    with pytest.raises(ScriptCacheLost):
        run_scripts(client.redis, calls)


def test_the_wire_ends_a_call_behind_a_later_call_on_its_keys(client: Client) -> None:
    client.enqueue("a", ["warm"])  # the wire's kept connection is open: no reconnect will load anything
    _clear(client)
    requests = [make_request("a", [0], unique=True), make_request("a", [1])]
    _partial_cache(client.settings, _plan(client, requests)[0][1].script)
    with pytest.raises(ScriptCacheLost):
        client.enqueue_many(requests)
    assert [client.get_task(i).args for i in _ready(client)] == [[1]]  # never [1], [0]
    _clear(client)
    # Every script is loaded again: the next batch runs whole, in order.
    ids = [h.id for h in client.enqueue_many([make_request("a", [2], unique=True), make_request("a", [3])])]
    assert _ready(client) == ids


def test_calls_on_other_keys_are_rerun(client: Client) -> None:
    """A later call on another queue commutes with the missing one: re-run, nothing lost."""
    requests = [make_request("a", [0], unique=True, queue="q1"), make_request("a", [1], queue="q2")]
    calls, ids = _plan(client, requests)
    client.redis.ping()
    _partial_cache(client.settings, calls[1].script)
    replies = run_scripts_replies(client.redis, calls)
    assert not any(isinstance(r, Exception) for r in replies)
    assert _ready(client, "q1") == [ids[0]] and _ready(client, "q2") == [ids[1]]


def _run_until_done(client: Client, count: int, tag: str) -> None:
    """Enqueue ``count`` tasks (retrying what a Redis coming back refuses) and wait for all to succeed."""
    ids: list[str] = []
    for i in range(count):
        for _ in range(200):
            try:
                ids.append(client.enqueue("add", [i, 1], headers={"round": tag}).id)
                break
            except BrokerUnavailable:
                time.sleep(0.05)
    wait_until(lambda: all(client.get_task(i).status is TaskStatus.SUCCESS for i in ids), timeout=30)


def test_a_worker_keeps_working_across_a_script_flush_and_a_redis_restart(
    own_server: RedisServer, client: Client, start_worker: Callable[..., Any]
) -> None:
    worker = start_worker("--pool", "thread", "--concurrency", "2")
    _run_until_done(client, 10, "before")
    client.redis.script_flush()  # under the worker's live connections
    _run_until_done(client, 10, "flushed")
    own_server.stop()
    own_server.start()  # an empty server on the same port
    _run_until_done(client, 10, "restarted")
    client.redis.script_flush()
    _run_until_done(client, 10, "flushed-again")
    assert worker.process.poll() is None, worker.log()


def _key(i: int) -> str | None:
    """A fresh unique key for two requests in three (a unique call each), none for the rest (plain)."""
    return f"k{uuid.uuid4().hex}" if i % 3 else None


def test_batches_keep_request_order_through_a_redis_restart_mid_stream(tmp_path: Path) -> None:
    """A producer sends mixed batches while Redis restarts under it (AOF fsynced on every write, so
    what Redis acknowledged survives; the cache of scripts does not), and another thread enqueues one
    task at a time. Every batch that returned has its
    queued tasks on the ready list in request order; one that raised BrokerUnavailable may be partly in."""
    server = RedisServer(tmp_path / "redis", appendonly=True, appendfsync="always").start()
    settings = Settings(redis_url=server.url, key_prefix="mid", socket_timeout_seconds=2.0)
    client = Client(settings)
    returned: list[list[str]] = []
    refused = 0
    stop = threading.Event()

    def produce() -> None:
        nonlocal refused
        while not stop.is_set():
            try:
                handles = client.enqueue_many(
                    [
                        make_request("a", [i], unique_key=f"k{uuid.uuid4().hex}" if i % 3 else None)
                        for i in range(7)
                    ]
                )
            except BrokerUnavailable:
                refused += 1
                time.sleep(0.01)
                continue
            returned.append([h.id for h in handles])

    def produce_one_by_one() -> None:
        # Another producer of the process, on another queue: the old code loaded only the script its
        # call met NOSCRIPT with, and a half-loaded cache put the batches' unique calls ahead.
        while not stop.is_set():
            try:
                client.enqueue("a", ["alone"], queue="other")
            except BrokerUnavailable:
                time.sleep(0.01)

    producers = [threading.Thread(target=p, daemon=True) for p in (produce, produce_one_by_one)]
    try:
        for producer in producers:
            producer.start()
        wait_until(lambda: len(returned) >= 20)
        server.stop()
        server.start()
        count = len(returned)
        wait_until(lambda: len(returned) >= count + 20, timeout=30)
        stop.set()
        for producer in producers:
            producer.join(10)
        position = {task_id: n for n, task_id in enumerate(_ready(client))}
        for ids in returned:
            assert [position[i] for i in ids] == sorted(position[i] for i in ids)
    finally:
        stop.set()
        client.close()
        server.stop()


def test_a_user_refused_script_exists_still_connects_and_runs_scripts(own_server: RedisServer) -> None:
    """An ACL without SCRIPT EXISTS: the connect-time check is skipped (logged), not fatal; scripts
    are loaded on the first NOSCRIPT as before."""
    name = f"u{uuid.uuid4().hex[:8]}"
    admin = redis.Redis.from_url(own_server.url, decode_responses=True)
    try:
        admin.acl_setuser(
            name, enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-script|exists"]
        )
        admin.script_flush()
        url = own_server.url.replace("redis://", f"redis://{name}:pw@", 1)
        limited = Client(Settings(redis_url=url, key_prefix=f"t{uuid.uuid4().hex[:10]}"))
        try:
            handles = limited.enqueue_many([make_request("a", [0], unique=True), make_request("a", [1])])
            assert _ready(limited) == [h.id for h in handles]
        finally:
            limited.close()
    finally:
        admin.acl_deluser(name)
        admin.close()
