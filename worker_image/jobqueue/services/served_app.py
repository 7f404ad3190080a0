"""What ``jobqueue up --app`` serves: the user's app, its queues and task names, and the watch on its
source that ``--reload`` uses to restart the workers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jobqueue.broker.client import Client

# The built-in demo app, served by ``jobqueue up`` without ``--app`` (what ``make run`` shows).
DEMO_APP = "jobqueue.demo:app"
# Folders never watched: environments, caches and VCS data hold many files and none of the user's code.
_SKIPPED_DIRS = {"__pycache__", "node_modules", "site-packages", "venv", "build", "dist"}
# An upper bound on the files one check looks at, so pointing --reload at a huge tree costs a bounded
# amount of stat calls per check rather than growing without limit.
MAX_WATCHED_FILES = 5_000


@dataclass(frozen=True)
class ServedApp:
    """The app ``jobqueue up`` runs workers for (``--app``), or the demo."""

    app_spec: str
    queues: tuple[str, ...]
    task_names: tuple[str, ...]
    demo: bool  # the demo producer runs (only for the built-in demo app)
    watch_root: Path | None = None  # --reload: the source tree whose changes restart the workers
    # The JSON body of the submit example printed at start: a task this app really has, on its queue.
    example_request: str = json.dumps({"name": "add", "args": [1, 2]})

    def describe(self) -> list[str]:
        """The lines ``jobqueue up`` prints about what it serves."""
        lines = [
            f"App:            {self.app_spec}",
            f"Queues:         {', '.join(self.queues)}",
            f"Tasks:          {', '.join(self.task_names)}",
        ]
        if self.watch_root is not None:
            lines.append(f"Reload:         workers restart when a .py file under {self.watch_root} changes")
        return lines


def _python_files(root: Path) -> Iterator[Path]:
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(directory) / name


def source_snapshot(root: Path) -> dict[Path, int]:
    """Modification times (ns) of the Python files under ``root``, at most MAX_WATCHED_FILES of them."""
    snapshot: dict[Path, int] = {}
    for path in _python_files(root):
        if len(snapshot) >= MAX_WATCHED_FILES:
            break
        try:
            snapshot[path] = path.stat().st_mtime_ns
        except OSError:
            continue  # removed between the walk and the stat: the next check sees it gone
    return snapshot


@dataclass
class SourceWatcher:
    """Says whether the source under ``root`` changed (a file added, removed or modified) since the last
    call. Polled by the local stack's loop every couple of seconds; no extra dependency, no thread."""

    root: Path
    _last: dict[Path, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._last = source_snapshot(self.root)

    def changed(self) -> bool:
        """True once per change."""
        current = source_snapshot(self.root)
        if current == self._last:
            return False
        self._last = current
        return True


def status_line(client: Client, queues: tuple[str, ...]) -> str:
    """Counters summed over the served queues, for the local stack's periodic status line."""
    totals = dict.fromkeys(("enqueued", "succeeded", "retried", "dead", "ready", "running"), 0)
    for queue in queues:
        depth = client.queue_depth(queue)
        stats = client.redis.hgetall(client.queue_keys(queue).stats)
        for name in ("enqueued", "succeeded", "retried"):
            totals[name] += int(stats.get(name, 0))
        totals["dead"] += depth.dead
        totals["ready"] += depth.total_ready
        totals["running"] += depth.in_flight
    return " ".join(f"{name}={value}" for name, value in totals.items())


def example_request(task_queues: dict[str, str]) -> str:
    """A submit body for one of the app's tasks (``task name -> queue``): ``add`` if it has one (the
    demo's), else the first by name; the queue is named unless it is "default", where REST submits go."""
    if not task_queues:
        return json.dumps({"name": "add", "args": [1, 2]})
    name = "add" if "add" in task_queues else min(task_queues)
    body: dict[str, object] = {"name": name, "args": [1, 2] if name == "add" else []}
    if task_queues[name] != "default":
        body["queue"] = task_queues[name]
    return json.dumps(body)
