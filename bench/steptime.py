"""Run one step of ``make bench`` and note how long it took: ``python -m bench.steptime -- COMMAND``.

The Makefile runs every step through this, so "How to run" in docs/benchmarks.md can show what each
step took in the latest run (``bench.summary`` writes that table) rather than a remembered guess. The
step's own output and exit status pass through unchanged; the time is kept per command in
``bench/results/summary/step-times.json``, the newest run of a command replacing its previous one.

    python -m bench.steptime -- .venv/bin/python -m bench.cold_start --rounds 5
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.summary import SUMMARY_DIR, TIMES_FILE, read_times


def shown(command: Sequence[str]) -> str:
    """The command as the docs show it: an interpreter path becomes ``python``."""
    words = list(command)
    if words and Path(words[0]).name.startswith("python"):
        words[0] = "python"
    return shlex.join(words)


def note(directory: Path, command: str, seconds: float, status: int) -> None:
    """Keep one step's time; ``order`` keeps the steps in the order the latest ``make bench`` ran them."""
    times = read_times(directory)
    times.pop(command, None)
    order = max((int(t.get("order", 0)) for t in times.values() if isinstance(t, dict)), default=0) + 1
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    times[command] = {"seconds": round(seconds, 1), "date": date, "exit": status, "order": order}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / TIMES_FILE).write_text(json.dumps(times, indent=1) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command after ``--``; return its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[args.index("--") + 1 :] if "--" in args else args
    if not command:
        print("usage: python -m bench.steptime -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    directory = Path(os.environ.get("BENCH_SUMMARY_DIR", SUMMARY_DIR))
    began = time.monotonic()
    status = subprocess.call(command)
    note(directory, shown(command), time.monotonic() - began, status)
    return status


if __name__ == "__main__":
    sys.exit(main())
