"""Cost as queues grow: ``python -m bench.queue_scale``.

N queues of one ready task each (N = 100, 1,000, 10,000 by default) on a dedicated ``redis-server``; the
API app (``jobqueue_api.create_app``) served in-process through Starlette's TestClient, so the figures are
the API's own work and its Redis round trips, not a network. For each N: one page of
``GET /api/v1/queues`` (the first, of the default 100 and of the maximum 1,000), a ``/metrics`` scrape and
its size, and how each grows from the previous N (x10 queues: a page should stay flat, a scrape grow at
most 10x). ``--old`` also times the per-queue reads the listing and the scrape used before (three or four
round trips per queue) at every N but the largest.

    python -m bench.queue_scale
    python -m bench.queue_scale --queues 100,1000 --repeats 3

The table is written into docs/benchmarks.md between the ``bench:queue-scale`` markers, and the headline
figures at the largest size (a scrape, a page of 100) saved for bench.summary, unless ``--no-docs``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from bench import headlines, summary
from bench.report import command_line, markdown, measured_with, replace_results
from bench.runner import REPO_ROOT
from jobqueue import Client, Settings
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.live_state import queue_counters
from jobqueue.embedded.redis_server import RedisServer
from jobqueue_api import create_app
from jobqueue_api.settings import ApiSettings

HEADERS = {"Authorization": "Bearer bench"}
DOCS_MARKERS = ("<!-- bench:queue-scale:start -->", "<!-- bench:queue-scale:end -->")


def _median_ms(repeats: int, call: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _fill(client: Client, total: int, have: int) -> None:
    """Queues have..total-1, one ready task each (names sort in creation order)."""
    for start in range(have, total, 1000):
        client.enqueue_many(
            [make_request("noop", [i], queue=f"q{i:06d}") for i in range(start, min(total, start + 1000))]
        )


def _get(api: TestClient, path: str) -> int:
    r = api.get(path, headers=HEADERS)
    if r.status_code != 200:
        raise SystemExit(f"{path}: {r.status_code} {r.text[:300]}")
    return len(r.content)


def _old_reads(client: Client, names: list[str]) -> None:
    """What the listing and the scrape did per queue before (depth, oldest age, counters)."""
    for name in names:
        client.queue_depth(name)
        client.oldest_ready_age(name)
        queue_counters(client, name)


def table(rows: list[dict[str, float]]) -> str:
    """One row per size: the pages, the scrape, its size and growth, the old per-queue reads."""
    out = [["queues", "page of 100 ms", "page of 100, mid-list ms", "page of 1,000 ms", "/metrics ms",
            "/metrics µs per queue", "/metrics size", "scrape x vs previous",
            "per-queue reads before ms"]]  # fmt: skip
    previous = None
    for row in rows:
        growth = f"{row['scrape'] / previous:.1f}x" if previous else "-"
        previous = row["scrape"]
        out.append([
            f"{row['queues']:,}", f"{row['page100']:.1f}", f"{row['page100_mid']:.1f}",
            f"{row['page1000']:.1f}",
            f"{row['scrape']:,.0f}", f"{row['scrape'] * 1000 / row['queues']:,.0f}",
            f"{row['scrape_bytes'] / 1e6:.2f} MB", growth, f"{row['old']:,.0f}" if "old" in row else "-",
        ])  # fmt: skip
    return markdown(out)


def main(argv: list[str] | None = None) -> int:
    """Measure each size; print one markdown table."""
    parser = argparse.ArgumentParser(prog="python -m bench.queue_scale")
    parser.add_argument("--queues", default="100,1000,10000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--old", action="store_true", help="also time the per-queue reads of before")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/ alone")
    parser.add_argument(
        "--summary-dir", type=Path, default=None, help="headline figures (default: beside --docs)"
    )
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    sizes = [int(n) for n in args.queues.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-queue-scale-") as tmp:
        server = RedisServer(Path(tmp)).start()
        settings = Settings(redis_url=SecretStr(server.url), key_prefix="qs")
        client = Client(settings)
        try:
            app = create_app(settings, ApiSettings(keys=SecretStr("bench:admin")))
            with TestClient(app) as api:
                have = 0
                for n in sizes:
                    _fill(client, n, have)
                    have = n
                    middle = f"q{n // 2:06d}"
                    row = {
                        "queues": n,
                        "page100": _median_ms(args.repeats, lambda: _get(api, "/api/v1/queues")),
                        "page100_mid": _median_ms(
                            args.repeats,
                            lambda: _get(api, f"/api/v1/queues?after={middle}"),  # noqa: B023
                        ),
                        "page1000": _median_ms(args.repeats, lambda: _get(api, "/api/v1/queues?limit=1000")),
                        "scrape": _median_ms(args.repeats, lambda: _get(api, "/metrics")),
                        "scrape_bytes": _get(api, "/metrics"),
                    }
                    if args.old and n < max(sizes):
                        names = client.known_queues()
                        row["old"] = _median_ms(1, lambda: _old_reads(client, names))  # noqa: B023
                    rows.append(row)
                    print(f"{n} queues: {row}", flush=True)
        finally:
            client.close()
            server.stop()
    load = f"{load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    command = command_line("bench.queue_scale", argv)
    section = (
        measured_with(command) + f", load average "
        f"{load}; medians of {args.repeats}, the API in-process, one dedicated redis-server.\n\n"
        + table(rows)
    )
    print("\n" + section)
    if not args.no_docs:
        current = args.docs.read_text() if args.docs.exists() else ""
        args.docs.write_text(replace_results(current, section, DOCS_MARKERS))
        top = rows[-1]
        figures = headlines.queue_scale(int(top["queues"]), top["scrape"], top["page100"])
        summary.publish(
            "queue_scale",
            "bench.queue_scale",
            argv,
            load,
            figures,
            summary.directory_for(args.docs, args.summary_dir),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
