"""What `jobqueue up --app` serves: the printed submit example, the description, and the source watch
behind --reload."""

from __future__ import annotations

import json
import os
from pathlib import Path

from jobqueue.services.served_app import ServedApp, SourceWatcher, example_request


def test_the_submit_example_uses_a_task_of_the_app_on_its_queue() -> None:
    assert json.loads(example_request({"send": "email", "bill": "default"})) == {"name": "bill", "args": []}
    assert json.loads(example_request({"send": "email"})) == {"name": "send", "args": [], "queue": "email"}
    assert json.loads(example_request({"add": "default", "zzz": "x"})) == {"name": "add", "args": [1, 2]}


def test_the_description_names_app_queues_and_tasks() -> None:
    served = ServedApp("tasks:app", ("default", "email"), ("add", "send"), demo=False)
    assert served.describe() == [
        "App:            tasks:app",
        "Queues:         default, email",
        "Tasks:          add, send",
    ]


def test_the_watch_sees_python_files_added_changed_and_removed(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text("x = 1\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / "__pycache__").mkdir()
    watcher = SourceWatcher(tmp_path)
    assert not watcher.changed()
    # Changes where no user code lives are not changes.
    (tmp_path / ".venv" / "site.py").write_text("")
    (tmp_path / "__pycache__" / "tasks.py").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert not watcher.changed()
    stat = (tmp_path / "tasks.py").stat()
    os.utime(tmp_path / "tasks.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert watcher.changed()
    assert not watcher.changed()  # reported once
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "more.py").write_text("")
    assert watcher.changed()
    (tmp_path / "pkg" / "more.py").unlink()
    assert watcher.changed()
