"""jobqueue on a real Redis Cluster (three primaries, each with a replica, on 127.0.0.1): queues spread
over all three shards, and every Lua script checked against a cluster node for the keys it touches."""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from jq_testing import burst_worker
from psycopg_pool import ConnectionPool
from record_helpers import drain, fail, fetch, make_recorder, succeed
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ResponseError
from redis_topologies import ClusterTopology, ha_settings

from jobqueue import AsyncClient, Client, Settings, TaskStatus
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.lease_recovery import build_recover
from jobqueue.broker.leases import build_heartbeat, build_release
from jobqueue.broker.promotion import build_promote
from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.broker.queue_overview import read_queue_states
from jobqueue.broker.raw_reads import read_many, read_many_async
from jobqueue.broker.redis_io import connect, run_script, script_sha
from jobqueue.broker.schedule_scripts import (
    FireOutcome,
    ScheduleOp,
    claim_fire,
    record_fire_outcome,
    update_schedule,
)
from jobqueue.broker.scripts import SCRIPT_NAMES, script_source
from jobqueue.broker.task_metrics import MetricsFlush, build_flush
from jobqueue.broker.task_progress import build_progress
from jobqueue.broker.watch import build_watch
from jobqueue.broker.workflows import submit
from jobqueue.canvas import Signature, chain
from jobqueue.embedded.redis_server import RedisServer
from jobqueue.errors import ConfigurationError, ValidationError
from jobqueue.keys import QueueKeys

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def settings(cluster_topology: ClusterTopology) -> Settings:
    return ha_settings(cluster_topology.url)


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    c = Client(settings)
    yield c
    c.close()


def queues_on_every_shard(client: Client, per_shard: int = 1) -> dict[str, list[str]]:
    """Queue names grouped by the primary that owns their slot, ``per_shard`` on each of the three."""
    cluster = client.redis
    assert isinstance(cluster, RedisCluster)
    found: dict[str, list[str]] = {}
    for i in range(10_000):
        queue = f"q{i}"
        node = cluster.get_node_from_key(QueueKeys(client.settings.key_prefix, queue).ready("high")).name
        if len(found.setdefault(node, [])) < per_shard:
            found[node].append(queue)
        if len(found) == 3 and all(len(q) == per_shard for q in found.values()):
            return found
    raise AssertionError(f"could not place queues on three shards: {found}")


def test_enqueue_fetch_and_ack_on_queues_spread_over_all_three_shards(client: Client) -> None:
    shards = queues_on_every_shard(client, per_shard=2)
    assert len(shards) == 3
    queues = [q for names in shards.values() for q in names]
    handles = {q: [client.enqueue("add", [i, i], queue=q) for i in range(5)] for q in queues}
    assert {q: client.queue_depth(q).total_ready for q in queues} == dict.fromkeys(queues, 5)
    for queue in queues:
        jobs = fetch(client, 10, queue=queue)
        assert sorted(j.id for j in jobs) == sorted(h.id for h in handles[queue])
        for job in jobs:
            assert succeed(client, job, "7") == 1  # CompletionCode.SUCCEEDED
    assert all(h.status() == TaskStatus.SUCCESS for hs in handles.values() for h in hs)
    assert {q for q in queues} <= set(client.known_queues())


def test_a_single_queue_workflow_runs_and_a_cross_queue_one_is_refused_naming_the_queues(
    client: Client,
) -> None:
    add = Signature("add", (1, 2))
    flow = submit(client, chain(add.set(queue="flows"), Signature("add", (3,)).set(queue="flows")))
    assert [h.status() for h in flow.tasks] == [TaskStatus.QUEUED, TaskStatus.PENDING]
    with pytest.raises(ValidationError, match="spans queues flows, other") as caught:
        submit(client, chain(add.set(queue="flows"), Signature("add", (3,)).set(queue="other")))
    assert caught.value.field == "queue"
    parent = client.enqueue("add", [1, 1], queue="flows")
    with pytest.raises(ValidationError, match=r"parent .* is in queue 'flows', the task in 'other'") as edge:
        client.enqueue("add", [2, 2], queue="other", depends_on=[parent.id])
    assert edge.value.field == "depends_on"
    assert client.enqueue("add", [2, 2], queue="flows", depends_on=[parent.id]).status() == TaskStatus.PENDING


def test_a_workflow_follows_its_queues_slot_to_a_new_primary(
    cluster_topology: ClusterTopology, client: Client
) -> None:
    """A workflow is one MULTI/EXEC on the primary that owns its queue's slot. After the slot moved to
    another primary behind the client's back (its slot map stale), the transaction meets MOVED, writes
    nothing, and runs whole on the new owner."""
    queue = "wf-moving"
    keys = client.queue_keys(queue)
    two = (Signature("add", (1, 2)).set(queue=queue), Signature("add", (3,)).set(queue=queue))
    submit(client, chain(*two))  # the client now routes the slot to its owner
    source = cluster_topology.primary_of(keys.ready("high"))
    primaries = cluster_topology.primaries_now()
    target = next(n for n in primaries if n.port != source.port)
    ending = [n.client() for n in primaries]
    slot = cluster_topology.begin_slot_migration(keys.ready("high"), target)
    cluster_topology.end_slot_migration(slot, target, ending)

    moved = submit(client, chain(*two))
    assert [h.status() for h in moved.tasks] == [TaskStatus.QUEUED, TaskStatus.PENDING]
    assert target.client().hget(keys.task(moved.tasks[1].id), "status") == "PENDING"
    assert client.queue_depth(queue).total_ready == 2


def test_a_pinned_connection_is_refused_with_a_clear_error(settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="Redis Cluster"):
        connect(settings, single_connection=True)


def test_the_recorder_writes_events_of_queues_on_all_three_shards_into_postgresql(
    client: Client, pg_pool: ConnectionPool
) -> None:
    queues = [names[0] for names in queues_on_every_shard(client).values()]
    handles = [client.enqueue("add", [i, i], queue=q) for q in queues for i in range(3)]
    job = fetch(client, 1, queue=queues[1])[0]
    succeed(client, job, "7")
    recorder = make_recorder(client, pg_pool)
    assert drain(recorder) == len(handles) + 2  # enqueued x 9, then started and succeeded
    with pg_pool.connection() as conn:
        rows = dict(conn.execute("SELECT id, status FROM tasks").fetchall())
    assert rows == {h.id: "SUCCESS" if h.id == job.id else "QUEUED" for h in handles}


def test_a_worker_on_queues_of_three_shards_runs_retries_dead_letters_delays_and_cancels(
    settings: Settings, client: Client
) -> None:
    queues = [names[0] for names in queues_on_every_shard(client).values()]
    done = [client.enqueue("add", [i, i], queue=q) for i, q in enumerate(queues)]
    flaky = client.enqueue("fail_times", [2], max_retries=3, queue=queues[0])
    dead = client.enqueue("fail_with", ["value"], queue=queues[1])  # ValueError: dead-lettered
    delayed = client.enqueue("add", [1, 1], countdown=0.5, queue=queues[2])
    cancelled = client.enqueue("add", [9, 9], countdown=60, queue=queues[0])
    client.cancel(cancelled.id)

    ran = burst_worker(settings, "--queues", ",".join(queues), "--pool", "thread", "--burst-wait", "5")

    assert ran.returncode == 1, ran.stdout + ran.stderr[-3000:]  # 1: one task failed (the dead letter)
    assert [h.result(timeout=1) for h in done] == [0, 2, 4]
    assert flaky.result(timeout=1) == 3
    assert [t.id for t in client.list_dead_letters(queues[1])] == [dead.id]
    assert delayed.result(timeout=1) == 2
    assert client.get_task(cancelled.id).status == TaskStatus.CANCELLED


def test_dedup_rate_limit_and_a_single_queue_workflow(settings: Settings, client: Client) -> None:
    first = client.enqueue("add", [1, 1], unique=True)
    assert client.enqueue("add", [1, 1], unique=True).id == first.id
    QueueAdmin(client).set_rate_limit("limited", max_tasks_per_second=5)
    # Its stats read the Redis clock beside the limiter's state (once refused on Cluster: the keyless
    # TIME inside a transaction; the API's stats route and the operator's autoscaler failed on it).
    stats = QueueAdmin(client).rate_limit_stats("limited")
    assert (stats.enabled, stats.remaining, stats.wait_seconds) == (True, 1, 0)
    limited = [client.enqueue("add", [i, i], queue="limited") for i in range(8)]
    flow = submit(client, chain(Signature("add", (1, 2)), Signature("add", (3,))))

    ran = burst_worker(settings, "--queues", "default,limited", "--pool", "thread", "--burst-wait", "5")

    assert ran.returncode == 0, ran.stdout + ran.stderr[-3000:]
    assert first.result(timeout=1) == 2
    assert flow.sinks[0].result(timeout=1) == 6  # add(1, 2), then add(3, 3) with the parent's result
    assert [h.result(timeout=1) for h in limited] == [2 * i for i in range(8)]
    starts = sorted(client.get_task(h.id).started_at or 0.0 for h in limited)
    # 8 tasks at 5 a second (burst 1): at least 7 intervals of 0.2 s between the first and the last start.
    assert starts[0] > 0 and starts[-1] - starts[0] >= 1.3


def wake_latencies(client: Client, queues: list[str]) -> list[float]:
    """Seconds from enqueue to result for tasks sent to an idle worker, twice per queue."""
    client.enqueue("add", [0, 0], queue=queues[0]).result(timeout=30)  # the worker is up
    latencies = []
    for queue in [*queues, *queues]:
        time.sleep(0.3)  # idle: blocked in its wait
        started = time.monotonic()
        assert client.enqueue("add", [2, 3], queue=queue).result(timeout=10) == 5
        latencies.append(time.monotonic() - started)
    return latencies


def test_an_idle_worker_on_three_shards_wakes_for_a_task_on_any_of_them_as_fast_as_on_one_node(
    settings: Settings,
    client: Client,
    start_worker: Callable[..., Any],
    redis_server: RedisServer,
) -> None:
    queues = [names[0] for names in queues_on_every_shard(client).values()]
    start_worker("--queues", ",".join(queues), "--pool", "thread", worker_settings=settings)
    on_cluster = wake_latencies(client, queues)
    single = ha_settings(redis_server.url)
    single_client = Client(single)
    try:
        start_worker("--queues", ",".join(queues), "--pool", "thread", worker_settings=single)
        on_one_node = wake_latencies(single_client, queues)
    finally:
        single_client.close()
    print(
        "wake latency ms, cluster:", [round(x * 1000, 1) for x in on_cluster],
        "one node:", [round(x * 1000, 1) for x in on_one_node],
    )  # fmt: skip
    # Woken by the pop, not by the 1 s idle re-check; the margin is for this shared machine's noise.
    assert max(on_cluster) < 0.9
    assert sorted(on_cluster)[len(on_cluster) // 2] < sorted(on_one_node)[len(on_one_node) // 2] + 0.05


# -- every script's keys, checked on the cluster ---------------------------------------------------------


_ARG = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _unescape(arg: str) -> str:
    return re.sub(r"\\x([0-9a-f]{2})|\\(.)", lambda m: chr(int(m[1], 16)) if m[1] else m[2], arg)


class Monitor(threading.Thread):
    """MONITOR on one node, kept raw: each line is [client type, args]. A script's own commands are the
    'lua' lines after the EVALSHA / EVAL that ran it."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.conn = redis.Redis(port=port, decode_responses=True, protocol=2)
        # Its own connection, outside the pool: get_connection()'s signature differs across redis-py majors.
        self.connection = redis.Connection(port=port, decode_responses=True, protocol=2)
        self.connection.send_command("MONITOR")
        assert self.connection.read_response() == "OK"
        self.lines: list[tuple[str, list[str]]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                if not self.connection.can_read(timeout=0.05):
                    continue
                line = str(self.connection.read_response())
            except (redis.exceptions.ConnectionError, OSError, ValueError):
                return
            _time, _, rest = line.partition(" [")
            source, _, command = rest.partition("] ")
            self.lines.append((source.split(" ", 1)[1], [_unescape(a) for a in _ARG.findall(command)]))

    def stop(self) -> list[tuple[str, list[str]]]:
        # Lines the node sent but this thread has not read yet would be lost by stopping at once (the
        # last script run went missing under load): a marker command, then read up to it.
        marker = f"jobqueue-monitor-end-{id(self)}"
        self.conn.echo(marker)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(args[1:] == [marker] for _, args in self.lines[-20:]):
            time.sleep(0.01)
        self.halt.set()
        self.join(5)
        self.connection.disconnect()
        self.conn.close()
        return self.lines


def keys_each_script_touched(
    node: redis.Redis, lines: list[tuple[str, list[str]]], names: dict[str, str]
) -> list[tuple[str, list[str], list[str]]]:
    """(script name, declared KEYS, keys its commands touched) for every script run in ``lines``."""
    runs: list[tuple[str, list[str], list[str]]] = []
    for source, args in lines:
        if source != "lua":
            verb = args[0].upper() if args else ""
            if verb in ("EVALSHA", "EVAL"):
                body = args[1] if verb == "EVALSHA" else hashlib.sha1(args[1].encode()).hexdigest()
                runs.append((names.get(body, body), args[3 : 3 + int(args[2])], []))
            continue
        if not runs or args[0].upper() in ("PUBLISH", "TIME"):
            continue
        try:
            touched = node.command_getkeys(*args)
        except redis.exceptions.ResponseError:
            continue  # no key arguments
        runs[-1][2].extend(touched)
    return runs


# Keys a script may touch without their name in KEYS: the task ids are only known inside the script (popped
# from a list, read from a sorted set or a parked worker's entry), so their keys are derived there from a
# prefix that carries the queue's hash tag. They are always on the declared keys' slot (checked below, and
# Redis Cluster itself refuses anything else). Any other undeclared key fails this test.
DERIVED = re.compile(r"^[^{]*\{[A-Za-z0-9_-]+\}:(t:|children:|inbox:|held:)")


def _shape(key: str) -> str:
    return re.sub(r"[0-9a-f]{32}|w[0-9]+", "<id>", key.split("}", 1)[-1])


def test_every_script_touches_only_declared_or_derived_keys_of_one_slot(
    client: Client, settings: Settings, cluster_topology: ClusterTopology
) -> None:
    names = {script_sha(name): name for name in SCRIPT_NAMES}
    names |= {hashlib.sha1(script_source(n).encode()).hexdigest(): n for n in SCRIPT_NAMES}
    primaries = [n for n in cluster_topology.nodes if n.client().info("replication")["role"] == "master"]
    monitors = [Monitor(n.port) for n in primaries]
    for m in monitors:
        m.start()
    try:
        drive_every_script(client, settings, queue="audit")
    finally:
        lines = [m.stop() for m in monitors]
    runs = [
        run
        for node, node_lines in zip(primaries, lines, strict=True)
        for run in keys_each_script_touched(node.client(), node_lines, names)
    ]
    assert {name for name, _, _ in runs} >= set(SCRIPT_NAMES), set(SCRIPT_NAMES) - {n for n, _, _ in runs}
    derived: set[tuple[str, str]] = set()
    violations: set[tuple[str, str]] = set()
    for name, declared, touched in runs:
        slots = {key_slot(k.encode()) for k in [*declared, *touched]}
        assert len(slots) == 1, (name, declared, touched)
        for key in set(touched) - set(declared):
            (derived if DERIVED.match(key) else violations).add((name, _shape(key)))
    print("derived inside scripts:", sorted(derived))
    assert not violations, f"keys neither in KEYS nor derived from an id: {sorted(violations)}"


def drive_every_script(client: Client, settings: Settings, queue: str) -> None:
    """Run each of the 20 scripts at least once on ``queue`` (and the schedule keys)."""
    client.enqueue("add", [1, 1], queue=queue)  # enqueue
    client.enqueue_many([make_request("add", [i, i], queue=queue) for i in range(3)])  # enqueue_many
    client.enqueue("add", [5, 5], queue=queue, unique=True)
    client.enqueue("add", [5, 5], queue=queue, unique=True)  # the dedup path
    parent = client.enqueue("add", [6, 6], queue=queue)
    child = client.enqueue("add", [7, 7], queue=queue, depends_on=[parent.id])
    submit(client, chain(Signature("add", (1, 2)).set(queue=queue), Signature("add", (3,)).set(queue=queue)))
    doomed = client.enqueue("add", [8, 8], queue=queue)
    client.enqueue("add", [9, 9], queue=queue, depends_on=[doomed.id])
    jobs = fetch(client, 100, queue=queue)  # fetch
    by_id = {j.id: j for j in jobs}
    succeed(client, by_id.pop(parent.id))  # ack, releasing the child (workflow path)
    fail(client, by_id.pop(doomed.id), "ValueError: no", retry=False)  # fail, cancelling its child
    first, second, third, *rest = by_id.values()
    fail(client, first, "OSError: again", retry=True)  # fail -> delayed retry
    run_script(client.redis, build_promote(settings, queue))  # promote
    fail(client, second, "ValueError: no", retry=False)  # fail -> dead letter
    client.replay_dead_letter(second.id)  # replay
    redo = [j for j in fetch(client, 100, queue=queue) if j.id == second.id]
    fail(client, redo[0], "ValueError: no", retry=False)
    client.purge_dead_letters(queue)  # purge_dead
    run_script(client.redis, build_heartbeat(settings, queue, "w1", [third]))  # heartbeat
    run_script(
        client.redis, build_progress(settings, third.id, third.token, {"done": 1, "at": 1.0})
    )  # progress
    run_script(client.redis, build_release(settings, third, worker_id="w1"))  # release
    run_script(client.redis, build_recover(settings, queue, "w1"))  # recover
    client.cancel(child.id)  # cancel
    run_script(client.redis, build_watch(settings, parent.id))  # watch
    QueueAdmin(client).pause(queue)  # configure
    update_schedule(client, ScheduleOp.PUT, "audit", spec="{}", next_ms=1)  # schedule_update
    claim_fire(client, "audit", 1, next_ms=2, claimer="t", missed=0)  # schedule_claim
    record_fire_outcome(client, "audit", 1, FireOutcome.SKIPPED, detail="test")  # schedule_outcome
    flush = MetricsFlush(queue, 1, {"count": 1}, {"run_sum": 0.5})
    run_script(client.redis, build_flush(settings.key_prefix, "w1", flush))  # task_metrics
    read_queue_states(client, [queue], with_counters=True)  # queue_state, read raw node by node
    assert rest is not None


def test_the_asyncio_client_enqueues_one_and_many_on_every_shard(settings: Settings, client: Client) -> None:
    queues = [names[0] for names in queues_on_every_shard(client).values()]

    async def enqueue() -> list[str]:
        aclient = AsyncClient(settings)
        try:
            one = [await aclient.enqueue("add", [1, 1], queue=q) for q in queues]
            many = await aclient.enqueue_many([make_request("add", [2, 2], queue=q) for q in queues])
            for handle in [*one, *many]:
                assert (await aclient.get_task(handle.id)).status == TaskStatus.QUEUED
            return [h.id for h in [*one, *many]]
        finally:
            await aclient.close()

    ids = asyncio.run(enqueue())
    assert {q: client.queue_depth(q).total_ready for q in queues} == dict.fromkeys(queues, 2)
    assert len(set(ids)) == 6


def test_raw_reads_keep_their_one_node_shapes_on_the_cluster(settings: Settings, client: Client) -> None:
    """read_many / read_many_async (queue listing, /metrics, recorder progress) on keys of all three
    shards: RESP as parsed, in order: TIME as two strings, a hash as a flat list, an error in place."""
    queues = [names[0] for names in queues_on_every_shard(client).values()]
    hashes = [client.queue_keys(q).stats for q in queues]
    for i, key in enumerate(hashes):
        client.redis.hset(key, mapping={"a": str(i), "b": "x"})
    commands: list[tuple[Any, ...]] = [("TIME",)]
    for i, key in enumerate(hashes):
        commands += [("HGETALL", key), ("XINFO", "GROUPS", f"{key}:no-stream"), ("HGET", key, "a")]
    commands.append(("LLEN", client.queue_keys(queues[0]).ready("high")))

    def check(replies: list[Any]) -> None:
        assert len(replies) == len(commands)
        seconds, micros = replies[0]
        assert isinstance(seconds, str) and isinstance(micros, str) and int(seconds) > 0
        for i in range(3):
            flat, missing, one = replies[1 + 3 * i : 4 + 3 * i]
            assert flat == ["a", str(i), "b", "x"]
            assert isinstance(missing, ResponseError) and "no such key" in str(missing)
            assert one == str(i)
        assert replies[-1] == 0

    check(read_many(client.redis, commands))

    async def read() -> list[Any]:
        aclient = AsyncClient(settings)
        try:
            return await read_many_async(aclient.redis, commands)
        finally:
            await aclient.close()

    check(asyncio.run(read()))


def test_concurrent_enqueues_on_every_shard_share_round_trips(settings: Settings, client: Client) -> None:
    """Auto-pipelining on the cluster (coroutines of one AsyncClient, threads of one Client): each shared
    round trip is routed node by node, and every caller gets its own task."""
    queues = [names[0] for names in queues_on_every_shard(client).values()]

    async def coroutines() -> list[str]:
        aclient = AsyncClient(settings)
        try:
            handles = await asyncio.gather(
                *(aclient.enqueue("add", [i, i], queue=queues[i % 3]) for i in range(60))
            )
            return [h.id for h in handles]
        finally:
            await aclient.close()

    ids = asyncio.run(coroutines())
    threads_ids: list[str] = []

    def produce(queue: str) -> None:
        for i in range(20):
            threads_ids.append(client.enqueue("add", [i, i], queue=queue).id)

    threads = [threading.Thread(target=produce, args=(queues[i % 3],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids + threads_ids)) == 180
    assert [client.queue_depth(q).total_ready for q in queues] == [60, 60, 60]


def test_the_connection_cap_applies_to_each_node_of_the_cluster(settings: Settings) -> None:
    """JOBQUEUE_REDIS_MAX_CONNECTIONS on a Cluster URL caps each node's connections (redis-py's cluster
    pools refuse a call past the cap instead of waiting: a BrokerUnavailable the loops back off from)."""
    capped = settings.model_copy(update={"redis_max_connections": 3})
    cluster = connect(capped)
    try:
        assert isinstance(cluster, RedisCluster)
        primaries = cluster.get_primaries()
        assert len(primaries) == 3
        assert all(n.redis_connection.connection_pool.max_connections == 3 for n in primaries)
    finally:
        cluster.close()

    async def node_caps() -> list[int]:
        aclient = AsyncClient(capped)
        try:
            await aclient.redis.ping()
            return [n.max_connections for n in aclient.redis.get_primaries()]  # type: ignore[attr-defined]
        finally:
            await aclient.close()

    assert asyncio.run(node_caps()) == [3, 3, 3]
