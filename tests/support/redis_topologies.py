"""Real multi-node Redis for the tests, on 127.0.0.1 free ports: one primary + one replica watched by three
sentinels, and a Redis Cluster of three primaries (each with a replica). Every process is a redis-server
child of the test session, stopped at its end; nothing is shared with other sessions."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

from jobqueue import Settings
from jobqueue.embedded.redis_server import find_redis_server

SERVICE_NAME = "jqprimary"


def _wait(predicate: object, what: str, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except (redis.exceptions.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-1500:]}" for p in logs if p.exists())
    raise AssertionError(f"{what} not reached within {timeout}s (last error: {last!r})\n{tails}")


@dataclass
class Node:
    """One redis-server (or sentinel) process."""

    directory: Path
    port: int
    args: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def start(self) -> Node:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [find_redis_server(), *self.args],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, decode_responses=True, protocol=2, socket_timeout=2, socket_connect_timeout=1
        )

    def kill(self) -> None:
        """SIGKILL: the crash a failover is for (no shutdown, no final write to disk)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def free_ports(n: int) -> list[int]:
    """n distinct TCP ports free on 127.0.0.1, chosen before any server starts: each socket stays bound
    until all are picked. One at a time, a port handed out could come back again before the server it
    was for had bound it (CI saw a sentinel given the primary's port)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def node_id(node: Node) -> str:
    return str(node.client().execute_command("CLUSTER", "MYID"))


def _server_args(directory: Path, port: int, *extra: str) -> list[str]:
    return [
        *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
        *("--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(directory / "redis.log")),
        *extra,
    ]


@dataclass
class SentinelTopology:
    """A primary, its replica and three sentinels (quorum 2) that fail over within about two seconds."""

    root: Path
    primary: Node = field(init=False)
    replica: Node = field(init=False)
    sentinels: list[Node] = field(default_factory=list, init=False)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE_NAME}"

    def start(self, timeout: float = 30.0) -> SentinelTopology:
        primary_port, replica_port, *sentinel_ports = free_ports(5)
        self.primary = Node(self.root / "primary", primary_port, [])
        self.primary.args = _server_args(self.primary.directory, primary_port)
        self.primary.start()
        self.replica = Node(self.root / "replica", replica_port, [])
        self.replica.args = _server_args(
            self.replica.directory, replica_port, "--replicaof", "127.0.0.1", str(primary_port)
        )
        self.replica.start()
        for i, port in enumerate(sentinel_ports):
            directory = self.root / f"sentinel{i}"
            directory.mkdir(parents=True, exist_ok=True)
            conf = directory / "sentinel.conf"  # a sentinel rewrites its own configuration file
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {directory}\n"
                f"logfile {directory / 'redis.log'}\n"
                f"sentinel monitor {SERVICE_NAME} 127.0.0.1 {primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE_NAME} 1000\n"
                f"sentinel failover-timeout {SERVICE_NAME} 5000\n"
                f"sentinel parallel-syncs {SERVICE_NAME} 1\n"
            )
            self.sentinels.append(Node(directory, port, [str(conf), "--sentinel"]).start())
        logs = [n.log for n in self.nodes]
        _wait(self._replica_in_sync, "replica in sync", timeout, logs)
        _wait(self._sentinels_know_everyone, "sentinels see the replica and each other", timeout, logs)
        return self

    @property
    def nodes(self) -> list[Node]:
        return [self.primary, self.replica, *self.sentinels]

    def _replica_in_sync(self) -> bool:
        info = self.replica.client().info("replication")
        return bool(info.get("master_link_status") == "up")

    def _sentinels_know_everyone(self) -> bool:
        for s in self.sentinels:
            # Raw commands: redis-py 6.4's parser for SENTINEL MASTER fails (unexpected keyword).
            flat = s.client().execute_command("SENTINEL", "MASTER", SERVICE_NAME)
            master = dict(zip(flat[::2], flat[1::2], strict=True))
            if int(master.get("num-slaves", 0)) < 1 or int(master.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def current_primary_port(self) -> int:
        return self._primary_port_named_by(self.sentinels[0])

    @staticmethod
    def _primary_port_named_by(sentinel: Node) -> int:
        _host, port = sentinel.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE_NAME)
        return int(port)

    def restart_old_primary_as_replica(self, timeout: float = 30.0) -> None:
        """Start the killed primary again as a replica of the primary the sentinels name now (as a
        Sentinel-aware orchestrator does): restarted as a primary, a server without persistence comes
        back empty, and a sentinel that still follows it could make the promoted replica copy that empty
        data set. Waits until it is in sync."""
        current = self.current_primary_port()
        self.primary.args = _server_args(
            self.primary.directory, self.primary.port, "--replicaof", "127.0.0.1", str(current)
        )
        self.primary.start()

        def in_sync() -> bool:
            info = self.primary.client().info("replication")
            return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")

        _wait(in_sync, "the old primary in sync as a replica", timeout, [n.log for n in self.nodes])

    def wait_for_failover(self, old_port: int, timeout: float = 30.0) -> None:
        """Until every sentinel names a new primary and that server answers as a primary."""

        def promoted() -> bool:
            ports = {self._primary_port_named_by(s) for s in self.sentinels}
            if ports == {self.replica.port}:
                return bool(self.replica.client().info("replication")["role"] == "master")
            return False

        assert old_port == self.primary.port
        _wait(promoted, "failover to the replica", timeout, [n.log for n in self.nodes])

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()


@dataclass
class ClusterTopology:
    """A Redis Cluster of ``primaries`` primaries, each with ``replicas_each`` replica(s)."""

    root: Path
    primaries: int = 3
    replicas_each: int = 1
    nodes: list[Node] = field(default_factory=list, init=False)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[: self.primaries])

    def start(self, timeout: float = 60.0) -> ClusterTopology:
        count = self.primaries * (1 + self.replicas_each)
        ports = free_ports(2 * count)  # each node's client port and cluster bus port
        for i in range(count):
            port, bus_port = ports[2 * i], ports[2 * i + 1]
            directory = self.root / f"node{i}"
            directory.mkdir(parents=True, exist_ok=True)
            args = _server_args(
                directory,
                port,
                *("--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf")),
                *("--cluster-node-timeout", "2000"),
                # A replica may always take over (the default refuses one whose link was down for long,
                # which a loaded test machine can cause).
                *("--cluster-replica-validity-factor", "0"),
                # A free bus port of its own: the default, port + 10000, may be taken or out of range.
                *("--cluster-port", str(bus_port)),
            )
            self.nodes.append(Node(directory, port, args).start())
        logs = [n.log for n in self.nodes]
        _wait(lambda: all(n.client().ping() for n in self.nodes), "cluster nodes answering", timeout, logs)
        cli = str(Path(find_redis_server()).with_name("redis-cli"))
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                str(self.replicas_each),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        _wait(self._healthy, "cluster_state:ok on every node", timeout, logs)
        return self

    def primary_of(self, key: str) -> Node:
        """The node serving ``key``'s slot now."""
        slot = int(self.nodes[0].client().cluster("KEYSLOT", key))
        for start, end, primary, *_ in self.nodes[0].client().execute_command("CLUSTER", "SLOTS"):
            if int(start) <= slot <= int(end):
                return next(n for n in self.nodes if n.port == int(primary[1]))
        raise AssertionError(f"no node serves slot {slot}")

    def primaries_now(self) -> list[Node]:
        return [n for n in self.nodes if n.client().info("replication")["role"] == "master"]

    def begin_slot_migration(self, key: str, target: Node) -> int:
        """Start moving ``key``'s slot to ``target`` and copy its keys there; the slot stays in migration
        (the old owner answers ASK, the new one TRYAGAIN for new keys) until ``end_slot_migration``."""
        source = self.primary_of(key)
        slot = int(source.client().cluster("KEYSLOT", key))
        src, dst = source.client(), target.client()
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(source))
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(target))
        while names := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *names)
        return slot

    def end_slot_migration(self, slot: int, target: Node, primaries: list[redis.Redis]) -> None:
        """``target`` owns ``slot`` on every primary (clients connected beforehand: the moment is short)."""
        target_id = node_id(target)
        for node_client in primaries:
            node_client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            node_client.close()

    def wait_for_promotion(self, killed: Node, key: str, timeout: float = 60.0) -> Node:
        """Until a live node serves ``key``'s slot as primary (the killed primary's replica)."""
        alive = next(n for n in self.nodes if n is not killed)
        promoted: list[Node] = []

        def served() -> bool:
            slot = int(alive.client().cluster("KEYSLOT", key))
            for start, end, primary, *_ in alive.client().execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end) and int(primary[1]) != killed.port:
                    promoted[:] = [n for n in self.nodes if n.port == int(primary[1])]
                    return "cluster_state:ok" in str(alive.client().execute_command("CLUSTER", "INFO"))
            return False

        _wait(served, "the replica promoted", timeout, [n.log for n in self.nodes])
        return promoted[0]

    def restart_as_replica(self, killed: Node, timeout: float = 60.0) -> None:
        """Start a killed node again (its nodes.conf kept): it learns from the cluster that its replica
        took its slots over and becomes that node's replica (empty, without persistence: a full sync).
        Waits until it is in sync."""
        killed.start()

        def in_sync() -> bool:
            info = killed.client().info("replication")
            return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")

        _wait(in_sync, "the killed primary back in sync as a replica", timeout, [n.log for n in self.nodes])

    def _healthy(self) -> bool:
        for n in self.nodes:
            replication = n.client().info("replication")
            if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                return False
            info = n.client().cluster("INFO")
            text = info if isinstance(info, str) else str(info)
            if "cluster_state:ok" not in text and not (
                isinstance(info, dict) and info.get("cluster_state") == "ok"
            ):
                return False
        return True

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def ha_settings(url: str, **overrides: object) -> Settings:
    """Test settings (as tests/conftest.py's) on another Redis URL, with a fresh key prefix."""
    values: dict[str, object] = {
        "key_prefix": f"t{uuid.uuid4().hex[:10]}",
        "lease_seconds": 2.0,
        "heartbeat_seconds": 0.5,
        "default_max_retries": 0,
        **overrides,
    }
    return Settings(redis_url=url, **values)  # type: ignore[arg-type]
