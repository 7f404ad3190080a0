"""Enqueue driver, run as a subprocess inside the system's own venv:

    python -m bench.enqueue SYSTEM one|batch|steady N [--rate R] [--batch-size B]
    python -m bench.enqueue SYSTEM concurrent N --producers P --style async|threads

Prints one JSON object: {"n", "seconds"} and, for ``steady``, {"enqueued_at": [unix seconds per seq]}.
Standard library plus the system's task module only (it runs in the peers' venvs too).

A task module defines ``enqueue_one(seq)`` or, for asyncio-only systems (arq, Taskiq),
``async_producer()``: an async context manager yielding ``send(seq)``, so one event loop and one
connection pool serve the whole run, as in an asyncio application.

``concurrent`` is a web server's producer side: P callers in one process at once, each enqueueing its
share of the N tasks one call at a time and awaiting each (``async``: P coroutines in one event loop, with
the module's ``concurrent_async_producer()`` if it has one, else its ``async_producer()``; ``threads``: P
threads calling ``enqueue_one``). Timed from the first call to the last reply.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import threading
import time
from types import ModuleType


def _slot_delay(start: float, k: int, interval: float) -> float:
    """Seconds until task k's slot in an open loop at a fixed rate (each task is sent at its slot,
    whatever the previous one cost, so a slow system is not rewarded with a lighter load)."""
    return start + k * interval - time.perf_counter()


def _run_sync(
    tasks: ModuleType, mode: str, seqs: list[int], start: float, args: argparse.Namespace
) -> list[float]:
    enqueued_at: list[float] = []
    if mode == "one":
        enqueue_one = tasks.enqueue_one
        for seq in seqs:
            enqueue_one(seq)
    elif mode == "batch":
        for i in range(0, len(seqs), args.batch_size):
            tasks.enqueue_batch(seqs[i : i + args.batch_size])
    else:
        interval = 1.0 / args.rate
        for k, seq in enumerate(seqs):
            delay = _slot_delay(start, k, interval)
            if delay > 0:
                time.sleep(delay)
            enqueued_at.append(time.time())
            tasks.enqueue_one(seq)
    return enqueued_at


async def _run_async(
    tasks: ModuleType, mode: str, seqs: list[int], args: argparse.Namespace
) -> tuple[float, list[float]]:
    """Like _run_sync, inside one event loop; the producer's start-up is not timed."""
    enqueued_at: list[float] = []
    async with tasks.async_producer() as send:
        start = time.perf_counter()
        if mode == "one":
            for seq in seqs:
                await send(seq)
        else:
            interval = 1.0 / args.rate
            for k, seq in enumerate(seqs):
                delay = _slot_delay(start, k, interval)
                if delay > 0:
                    await asyncio.sleep(delay)
                enqueued_at.append(time.time())
                await send(seq)
    return start, enqueued_at


async def _run_concurrent_async(tasks: ModuleType, seqs: list[int], producers: int) -> tuple[float, float]:
    """(start, end) of P coroutines sharing ``seqs``, each awaiting its sends one by one."""
    factory = getattr(tasks, "concurrent_async_producer", None) or tasks.async_producer
    async with factory() as send:
        await send(-1)  # connect and load scripts outside the measurement

        async def producer(share: list[int]) -> None:
            for seq in share:
                await send(seq)

        start = time.perf_counter()
        await asyncio.gather(*(producer(seqs[p::producers]) for p in range(producers)))
        return start, time.perf_counter()


def _run_concurrent_threads(tasks: ModuleType, seqs: list[int], producers: int) -> tuple[float, float]:
    """(start, end) of P threads sharing ``seqs``, each calling ``enqueue_one`` one by one."""
    tasks.enqueue_one(-1)  # connect and load scripts outside the measurement
    barrier = threading.Barrier(producers + 1)

    def producer(share: list[int]) -> None:
        barrier.wait()
        for seq in share:
            tasks.enqueue_one(seq)

    threads = [threading.Thread(target=producer, args=(seqs[p::producers],)) for p in range(producers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return start, time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, enqueue, print the timing as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.enqueue")
    parser.add_argument("system")
    parser.add_argument("mode", choices=["one", "batch", "steady", "concurrent", "version"])
    parser.add_argument("n", type=int, nargs="?", default=0)
    parser.add_argument("--first", type=int, default=0, help="first sequence number")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="tasks/s in steady mode")
    parser.add_argument("--producers", type=int, default=100, help="callers at once in concurrent mode")
    parser.add_argument("--style", choices=["async", "threads"], default="async")
    parser.add_argument(
        "--start-at", type=float, default=None, help="steady mode: unix time to start sending at, so that "
        "several producer processes started one after another send together",
    )  # fmt: skip
    args = parser.parse_args(argv)
    tasks = importlib.import_module(f"bench.tasks.{args.system}_tasks")
    if args.mode == "version":
        print(json.dumps({"version": tasks.version()}))
        return 0
    seqs = list(range(args.first, args.first + args.n))
    out: dict[str, object] = {"n": args.n}
    if args.start_at is not None:
        # Imports and connecting are done by now (the task module is loaded); what remains is the wait.
        time.sleep(max(0.0, args.start_at - time.time()))
    if args.mode == "concurrent":
        cpu = time.process_time()
        if args.style == "threads":
            start, end = _run_concurrent_threads(tasks, seqs, args.producers)
        else:
            start, end = asyncio.run(_run_concurrent_async(tasks, seqs, args.producers))
        # The producer's CPU per task is steadier than its rate on a shared machine (it does not count
        # waiting for a core); it includes the connect and the first call, small next to N tasks.
        cpu = time.process_time() - cpu
        json.dump({"n": args.n, "seconds": end - start, "cpu_seconds": cpu}, sys.stdout)
        return 0
    if hasattr(tasks, "async_producer") and args.mode != "batch":
        start, enqueued_at = asyncio.run(_run_async(tasks, args.mode, seqs, args))
    else:
        start = time.perf_counter()
        enqueued_at = _run_sync(tasks, args.mode, seqs, start, args)
    out["seconds"] = time.perf_counter() - start
    if args.mode == "steady":
        out["enqueued_at"] = enqueued_at
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
