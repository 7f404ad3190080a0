"""What JOBQUEUE_REDIS_WAIT_REPLICAS=1 costs: enqueue one by one, enqueue in batches, and ack batches
against a primary with one replica on 127.0.0.1, without and with WAIT.

WAIT adds a round trip to the replica (the replica must receive the write and report its offset), so the
cost is that latency per enqueue call or ack batch, not per task of a batch.

    python -m bench.replica_wait [--tasks 2000] [--batch 100]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import redis
from pydantic import SecretStr

from jobqueue import Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.leases import Outcome, OutcomeKind, build_fetch, parse_fetch, plan_completions
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


def measure(url: str, replicas: int, tasks: int, batch: int) -> dict[str, float]:
    """Microseconds per enqueue (one by one), per task of a batch enqueue, and per ack batch."""
    settings = Settings(redis_url=SecretStr(url), key_prefix=f"rw{replicas}", redis_wait_replicas=replicas)
    client = Client(settings)
    wait = ReplicaWait.of(settings)
    try:
        client.enqueue("t", [0], queue=QUEUE)
        started = time.perf_counter()
        for i in range(tasks):
            client.enqueue("t", [i], queue=QUEUE)
        one_by_one = (time.perf_counter() - started) / tasks * 1e6
        started = time.perf_counter()
        for start in range(0, tasks, batch):
            client.enqueue_many([make_request("t", [i], queue=QUEUE) for i in range(start, start + batch)])
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
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
