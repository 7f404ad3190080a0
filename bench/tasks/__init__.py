"""Task modules, one per system, imported by that system's worker command and by bench.enqueue.

Each module defines the same no-op task (it only records its run, see bench.record), built from
``BENCH_REDIS_URL``, plus ``enqueue_one(seq)``, optionally ``enqueue_batch(seqs)``, and ``version()``.
Worker CLIs (rq, dramatiq, huey_consumer) import a module-level broker/app: that is how those tools work,
so these modules, unlike the project's own, build their app at import time.
"""
