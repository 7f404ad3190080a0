"""The idle wait on Redis Cluster: one blocking pop per queue slot, the first to pop ends the wait.

On one Redis the idle worker blocks in one BLPOP over every queue's wake list and hand-off inbox. Redis
Cluster refuses a BLPOP whose keys span hash slots, and each queue is its own slot (its tag ``{queue}``),
so here each slot's keys (a queue's inbox and wake list) get a BLPOP of their own, on a connection of its
own to the primary owning the slot. The latency stays one BLPOP reply: the waiter that pops wakes the
fetch loop at once. The other waiters are ended with CLIENT UNBLOCK on their node; a value one of them
popped in the meantime is pushed back to the head of its list (a wake marker or a hand-off record: the
next fetch of that queue takes an inbox record first, so none is lost).

A MOVED reply (resharding, failover) or a lost connection drops that slot's connection, refreshes the
slot map and reports BrokerUnavailable, which the fetch loop logs and retries after a short pause.
"""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import redis
from redis.crc import key_slot
from redis.exceptions import RedisError

from jobqueue.broker.redis_io import connect_cluster_node, translate_errors
from jobqueue.errors import BrokerUnavailable
from jobqueue.settings import Settings

Popped = tuple[str, str] | None


class ClusterWait:
    """Blocking pops over keys of several slots of one Redis Cluster. One wait at a time (the fetch loop's
    or a pool slot's, never both at once)."""

    def __init__(self, settings: Settings, cluster: Any) -> None:
        self._settings = settings
        self._cluster = cluster  # a redis.cluster.RedisCluster: its slot map names each slot's primary
        self._conns: dict[int, tuple[redis.Redis, int, Any]] = {}  # slot -> (connection, client id, node)
        self._threads = ThreadPoolExecutor(thread_name_prefix="jq-cluster-wait")

    def close(self) -> None:
        """Close every blocking connection (after the fetch loop ended)."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        for conn, _, _ in self._conns.values():
            conn.close()
        self._conns.clear()

    def blpop(self, keys: list[str], timeout: float) -> Popped:
        """(key, value) of the first pop among ``keys`` within ``timeout`` seconds, else None."""
        groups: dict[int, list[str]] = {}
        for key in keys:
            groups.setdefault(key_slot(key.encode()), []).append(key)
        first_done = threading.Event()
        futures = {
            slot: self._threads.submit(self._pop, slot, group, timeout, first_done)
            for slot, group in groups.items()
        }
        # A local deadline rather than BLPOP's own timeout alone: Redis checks those on its 100 ms tick.
        first_done.wait(timeout)
        # An UNBLOCK that reaches Redis before its BLPOP does is lost (that BLPOP would then block for its
        # whole timeout), so the waits still running are unblocked again until every one has ended.
        pending = {f: slot for slot, f in futures.items()}
        give_up = time.monotonic() + timeout + 5.0
        while pending and time.monotonic() < give_up:
            for future, slot in pending.items():
                if not future.done():
                    self._unblock(slot)
            done, _ = wait(pending, timeout=0.005)
            for future in done:
                del pending[future]
        popped: Popped = None
        error: BaseException | None = None
        for slot, future in futures.items():
            try:
                result = future.result(timeout=timeout + 5.0)
            except BaseException as exc:  # reported once every waiter has ended
                error = error or exc
                continue
            if result is None:
                continue
            if popped is None:
                popped = result
            else:
                self._push_back(slot, result)
        if popped is None and error is not None:
            raise error
        return popped

    def _connection(self, slot: int, key: str) -> tuple[redis.Redis, int, Any]:
        found = self._conns.get(slot)
        if found is None:
            node = self._cluster.get_node_from_key(key)
            conn = connect_cluster_node(self._settings, node.host, node.port)
            with translate_errors():
                found = (conn, int(conn.client_id()), node)
            self._conns[slot] = found
        return found

    def _pop(self, slot: int, keys: list[str], timeout: float, first_done: threading.Event) -> Popped:
        try:
            conn, _, _ = self._connection(slot, keys[0])
            with translate_errors():
                # The margin lets the local deadline (CLIENT UNBLOCK) end the wait, not Redis' tick.
                result: Popped = conn.blpop(keys, timeout=timeout + 0.5)
            return result
        except BrokerUnavailable:
            self._forget(slot)
            raise
        except Exception as exc:
            # MOVED / ASK after a resharding or failover: the slot map is stale.
            self._forget(slot)
            raise BrokerUnavailable(f"idle wait on slot {slot}: {exc}") from exc
        finally:
            first_done.set()

    def _unblock(self, slot: int) -> None:
        found = self._conns.get(slot)
        if found is None:
            return
        _, client_id, node = found
        with contextlib.suppress(RedisError, OSError):  # else the BLPOP's own timeout ends it
            node.redis_connection.client_unblock(client_id, error=False)

    def _push_back(self, slot: int, popped: tuple[str, str]) -> None:
        key, value = popped
        try:
            with translate_errors():
                self._connection(slot, key)[0].lpush(key, value)
        except BrokerUnavailable:
            # A wake marker is only a hint; an inbox record is leased to this worker and is recovered with
            # its lease if it cannot be put back.
            pass

    def _forget(self, slot: int) -> None:
        found = self._conns.pop(slot, None)
        if found is not None:
            found[0].close()
        with contextlib.suppress(RedisError, OSError):  # else the next wait tries again
            self._cluster.nodes_manager.initialize()
