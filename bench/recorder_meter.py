"""Meters for bench.recorder_overhead: how far a recorder is behind (from its committed position), the CPU of
processes and servers (Linux /proc), and Redis command time by command."""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

import redis

# Commands of this harness itself (INFO snapshots, the lag probe), never counted against anyone.
HARNESS = frozenset({"info", "flushdb", "ping", "xpending", "xrange", "xlen", "exists", "multi", "exec",
                     "time", "xinfo|groups", "xinfo|stream", "hget"})  # fmt: skip


def entry_key(entry_id: str) -> tuple[int, int]:
    """(ms, sequence) of a stream entry id."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _entry_ms(entry_id: str) -> int:
    return entry_key(entry_id)[0]


def backlog(conn: redis.Redis, stream: str, positions_key: str) -> tuple[int, float]:
    """(events not yet recorded, age in seconds of the oldest of them) for one stream, from the position
    the recorders committed (mirrored in the ``positions_key`` hash, record/recorder.py) and the
    stream's own count of entries added (``conn`` decodes responses). Read in one MULTI, so the figures
    describe one moment."""
    if not conn.exists(stream):
        return 0, 0.0
    pipe = conn.pipeline(transaction=True)
    pipe.hget(positions_key, stream)
    pipe.xinfo_stream(stream)
    pipe.time()
    position, stream_info, (seconds, micros) = pipe.execute()
    entry_id, _, consumed = (position or "").partition(" ")
    if not entry_id:
        waiting, after = int(stream_info["length"]), "-"  # nothing recorded yet
    else:
        waiting, after = int(stream_info["entries-added"]) - int(consumed or 0), f"({entry_id}"
    if waiting <= 0:
        return 0, 0.0
    unread = conn.xrange(stream, after, "+", count=1)
    oldest = _entry_ms(unread[0][0]) if unread else 0
    return waiting, max(0.0, seconds + micros / 1e6 - oldest / 1000) if oldest else 0.0


class LagProbe:
    """Samples the recorder's backlog every 50 ms in a thread; keeps the worst seen and every sample."""

    def __init__(self, url: str, stream: str, positions_key: str) -> None:
        self.conn = redis.Redis.from_url(url, decode_responses=True)
        self.stream, self.positions_key = stream, positions_key
        self.max_events, self.max_seconds = 0, 0.0
        self.samples: list[tuple[float, int, float]] = []  # (perf_counter, events behind, seconds behind)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LagProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            events, seconds = backlog(self.conn, self.stream, self.positions_key)
            self.samples.append((time.perf_counter(), events, seconds))
            self.max_events = max(self.max_events, events)
            self.max_seconds = max(self.max_seconds, seconds)


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (Linux /proc)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(pid: int) -> float:
    """CPU of a server and its live children (PostgreSQL: the postmaster and its backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except OSError:
            continue  # exited meanwhile
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


# What a recorder sends Redis (reads, queue discovery; the consumer-group protocol of before: acks and
# group bookkeeping). Not counted: the HSET that mirrors its positions after each commit (one per
# batch), as the hot path's scripts run HSET too.
RECORDER_COMMANDS = frozenset({
    "xread", "xreadgroup", "xack", "xautoclaim", "xinfo|stream", "xinfo|groups", "xinfo|consumers",
    "smembers", "xgroup|create", "xgroup|delconsumer",
})  # fmt: skip


def redis_usec_by_command(conn: redis.Redis) -> dict[str, int]:
    """Microseconds Redis spent per command since start (INFO commandstats)."""
    stats = conn.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["usec"]) for name, v in stats.items()}


def recorder_share_of_redis(before: dict[str, int], after: dict[str, int]) -> float:
    """Percent of Redis command time spent on the recorder's commands between two snapshots (the
    probes of this benchmark, XINFO / XPENDING / XRANGE from another connection, are not counted)."""
    spent = {k: v - before.get(k, 0) for k, v in after.items() if k not in HARNESS}
    total = sum(spent.values())
    return (
        round(sum(v for k, v in spent.items() if k in RECORDER_COMMANDS) / total * 100, 2) if total else 0.0
    )


def children_cpu_seconds() -> float:
    """CPU of every child process this process has waited for (drivers, workers, recorders)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lag_halves(samples: list[tuple[float, int, float]], start: float, end: float) -> list[float]:
    """The worst seconds-behind in the first and in the second half of [start, end]: a recorder that
    keeps up under sustained load has no worse a second half than its first."""
    middle = (start + end) / 2
    first = [s for t, _, s in samples if start <= t < middle]
    second = [s for t, _, s in samples if middle <= t <= end]
    return [round(max(first, default=0.0), 3), round(max(second, default=0.0), 3)]
