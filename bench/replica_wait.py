"""What JOBQUEUE_REDIS_WAIT_REPLICAS=1 costs: enqueue one by one, enqueue in batches, and ack batches
against a primary with one replica on 127.0.0.1, without and with WAIT.

WAIT adds a round trip to the replica (the replica must receive the write and report its offset), so the
cost is that latency per enqueue call or ack batch, not per task of a batch.

With ``--cluster``: a Redis Cluster of three primaries with one replica each, where the WAIT goes node by
node after that node's calls (broker/cluster_replica_wait.py); batch enqueues spread over three queues, one
per shard, so each batch ends with three WAITs (one after another, on the sync client).

    python -m bench.replica_wait [--tasks 2000] [--batch 100] [--cluster]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.broker.completion_calls import plan_completions
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import Outcome, OutcomeKind, build_fetch, parse_fetch
from jobqueue.broker.redis_io import ReplicaWait, run_script, run_scripts
from jobqueue.embedded.redis_server import find_redis_server, free_port

QUEUE = "replicawait"


def _start(directory: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    args = [find_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    args += ["--save", "", "--appendonly", "no", "--logfile", str(directory / "redis.log"), *extra]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_in_sync(port: int, timeout: float = 20.0) -> None:
    client = redis.Redis(port=port, decode_responses=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if client.info("replication").get("master_link_status") == "up":
                return
        except redis.exceptions.ConnectionError:
            pass
        time.sleep(0.05)
    raise SystemExit("the replica did not sync")


def _cluster_ok(port: int) -> bool:
    info = redis.Redis(port=port, decode_responses=True).cluster("INFO")  # a dict on redis-py 5+, else text
    return bool(info.get("cluster_state") == "ok") if isinstance(info, dict) else "cluster_state:ok" in info


def _start_cluster(root: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """Three primaries and three replicas on 127.0.0.1 (redis-cli --cluster create); the URL and processes."""
    ports = [free_port() for _ in range(6)]
    processes = [
        _start(root / f"node{i}", port, "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
               "--cluster-config-file", str(root / f"node{i}" / "nodes.conf"))
        for i, port in enumerate(ports)
    ]  # fmt: skip
    deadline = time.monotonic() + 20
    for port in ports:
        while True:
            try:
                redis.Redis(port=port).ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"cluster node {port} did not start") from None
                time.sleep(0.05)
    cli = str(Path(find_redis_server()).with_name("redis-cli"))
    nodes = [f"127.0.0.1:{port}" for port in ports]
    subprocess.run([cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    for port in ports:
        while not _cluster_ok(port):
            if time.monotonic() > deadline + 40:
                raise SystemExit("the cluster did not become ready")
            time.sleep(0.05)
        if redis.Redis(port=port, decode_responses=True).info("replication")["role"] == "slave":
            _wait_in_sync(port)
    return "redis+cluster://" + ",".join(nodes), processes


def _queues(client: Client, cluster: bool) -> list[str]:
    """The batch enqueue's queues: one per shard on a cluster, else the one queue."""
    if not cluster:
        return [QUEUE]
    by_node: dict[str, str] = {}
    for i in range(1000):
        queue = f"{QUEUE}{i}"
        node = client.redis.get_node_from_key(client.queue_keys(queue).ready("high")).name
        by_node.setdefault(node, queue)
        if len(by_node) == 3:
            return list(by_node.values())
    raise SystemExit("could not place a queue on every shard")


def measure(url: str, replicas: int, tasks: int, batch: int, cluster: bool = False) -> dict[str, float]:
    """Microseconds per enqueue (one by one), per task of a batch enqueue, and per ack batch."""
    settings = Settings(redis_url=SecretStr(url), key_prefix=f"rw{replicas}", redis_wait_replicas=replicas)
    client = Client(settings)
    wait = ReplicaWait.of(settings)
    try:
        client.enqueue("t", [0], queue=QUEUE)
        queues = _queues(client, cluster)
        for queue in queues:
            client.enqueue("t", [0], queue=queue)
        started = time.perf_counter()
        for i in range(tasks):
            client.enqueue("t", [i], queue=QUEUE)
        one_by_one = (time.perf_counter() - started) / tasks * 1e6
        started = time.perf_counter()
        for start in range(0, tasks, batch):
            client.enqueue_many(
                [make_request("t", [i], queue=queues[i % len(queues)]) for i in range(start, start + batch)]
            )
        batched = (time.perf_counter() - started) / tasks * 1e6
        ack_batches = 0
        ack_seconds = 0.0
        while True:
            reply = parse_fetch(QUEUE, run_script(client.redis, build_fetch(settings, QUEUE, batch, "bench")))
            if not reply.jobs:
                break
            outcomes = [(j, Outcome(j.id, j.token, OutcomeKind.SUCCESS, "null")) for j in reply.jobs]
            plan = plan_completions(settings, outcomes, lambda _job: None, None, worker_id="bench")
            started = time.perf_counter()
            run_scripts(client.redis, plan.calls, wait)
            ack_seconds += time.perf_counter() - started
            ack_batches += 1
        return {
            "enqueue_us": one_by_one,
            "batch_us_per_task": batched,
            "ack_batch_us": ack_seconds / ack_batches * 1e6,
        }
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--cluster", action="store_true", help="on a Redis Cluster of 3 primaries + 3 replicas"
    )
    args = parser.parse_args()
    if args.cluster:
        _main_cluster(args.tasks, args.batch)
        return
    with tempfile.TemporaryDirectory() as tmp:
        primary_port, replica_port = free_port(), free_port()
        primary = _start(Path(tmp) / "primary", primary_port)
        replica = _start(Path(tmp) / "replica", replica_port, "--replicaof", "127.0.0.1", str(primary_port))
        try:
            _wait_in_sync(replica_port)
            url = f"redis://127.0.0.1:{primary_port}/0"
            print(
                f"replica_wait: {args.tasks} tasks, batches of {args.batch}, primary + 1 replica on 127.0.0.1"
            )
            for replicas in (0, 1):
                r = measure(url, replicas, args.tasks, args.batch)
                print(
                    f"  WAIT_REPLICAS={replicas}: enqueue one by one {r['enqueue_us']:.0f} us, "
                    f"batch enqueue {r['batch_us_per_task']:.1f} us/task, "
                    f"ack batch {r['ack_batch_us']:.0f} us"
                )
        finally:
            for process in (replica, primary):
                process.terminate()
                process.wait(10)


def _main_cluster(tasks: int, batch: int, rounds: int = 5) -> None:
    """Without and with WAIT in alternating rounds (a shared machine's load drifts over a run: back-to-back
    halves measured it more than WAIT); the median of the rounds and their range."""
    with tempfile.TemporaryDirectory() as tmp:
        url, processes = _start_cluster(Path(tmp))
        try:
            per_round = max(batch, tasks // rounds // batch * batch)
            print(
                f"replica_wait --cluster: {rounds} alternating rounds of {per_round} tasks, batches of "
                f"{batch} over 3 queues on 3 shards, 3 primaries + 3 replicas on 127.0.0.1"
            )
            samples: dict[int, list[dict[str, float]]] = {0: [], 1: []}
            for _ in range(rounds):
                for replicas in (0, 1):
                    samples[replicas].append(measure(url, replicas, per_round, batch, cluster=True))
            for replicas, runs in samples.items():

                def spread(metric: str, runs: list[dict[str, float]] = runs) -> str:
                    values = sorted(r[metric] for r in runs)
                    return f"{statistics.median(values):.0f} us ({values[0]:.0f}-{values[-1]:.0f})"

                print(
                    f"  WAIT_REPLICAS={replicas}: enqueue one by one {spread('enqueue_us')}, batch enqueue "
                    f"per task {spread('batch_us_per_task')}, ack batch {spread('ack_batch_us')}"
                )
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    main()
