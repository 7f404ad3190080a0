"""Enqueue driver, run as a subprocess inside the system's own venv:

    python -m bench.enqueue SYSTEM one|batch|steady N [--rate R] [--batch-size B]

Prints one JSON object: {"n", "seconds"} and, for ``steady``, {"enqueued_at": [unix seconds per seq]}.
Standard library plus the system's task module only (it runs in the peers' venv too).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, enqueue, print the timing as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.enqueue")
    parser.add_argument("system")
    parser.add_argument("mode", choices=["one", "batch", "steady", "version"])
    parser.add_argument("n", type=int, nargs="?", default=0)
    parser.add_argument("--first", type=int, default=0, help="first sequence number")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="tasks/s in steady mode")
    args = parser.parse_args(argv)
    tasks = importlib.import_module(f"bench.tasks.{args.system}_tasks")
    if args.mode == "version":
        print(json.dumps({"version": tasks.version()}))
        return 0
    seqs = list(range(args.first, args.first + args.n))
    out: dict[str, object] = {"n": args.n}
    start = time.perf_counter()
    if args.mode == "one" and hasattr(tasks, "enqueue_sequential"):
        tasks.enqueue_sequential(seqs)  # asyncio-only systems: one by one, inside one event loop
    elif args.mode == "one":
        enqueue_one = tasks.enqueue_one
        for seq in seqs:
            enqueue_one(seq)
    elif args.mode == "batch":
        for i in range(0, len(seqs), args.batch_size):
            tasks.enqueue_batch(seqs[i : i + args.batch_size])
    else:
        # Open loop at a fixed rate: each task is sent at its slot, whatever the previous one cost, so a
        # slow system is not rewarded with a lighter load.
        interval = 1.0 / args.rate
        enqueued_at = []
        for k, seq in enumerate(seqs):
            delay = start + k * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            enqueued_at.append(time.time())
            tasks.enqueue_one(seq)
        out["enqueued_at"] = enqueued_at
    out["seconds"] = time.perf_counter() - start
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
