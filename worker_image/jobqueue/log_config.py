"""Logging set-up for entry points: text for terminals, JSON lines for log collectors."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

# The structured fields jobqueue attaches to its records (``extra=``), copied into each JSON line when
# present. The task transition lines (worker/task_log.py) use most of them.
_STRUCTURED = (
    "event",
    "task_id",
    "task",
    "queue",
    "attempt",
    "duration_ms",
    "worker",
    "status",
    "error",
    "retry_in_s",
    "stale",
    "hook",
    "task_args",
    "task_kwargs",
    "result",
    # The API's access log (jobqueue_api.access_log).
    "method",
    "route",
    "path",
    "key_id",
    "client",
)

LOG_FORMATS = ("auto", "text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the structured fields jobqueue attaches (task_id, queue, ...)."""

    def __init__(self) -> None:
        super().__init__()
        # A worker writes a line per finished task: the encoder is built once (json.dumps builds one per
        # call when given options) and the timestamp's seconds part is reused within the same second.
        # ensure_ascii (the default): a lone surrogate or a NUL in a message is escaped, never a line a
        # collector cannot decode.
        self._encode = json.JSONEncoder(default=str).encode
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # a benign race between threads: both compute the same string
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        entry: dict[str, Any] = {
            "ts": f"{self._stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        for name in _STRUCTURED:
            if name in fields:
                entry[name] = fields[name]
        # kopf's per-object records (the operator) name their object in ``k8s_ref``; written under the key
        # kopf's own JSON format uses, without the settings object kopf also attaches.
        ref = fields.get("k8s_ref")
        if isinstance(ref, dict):
            entry["object"] = {k: ref.get(k) for k in ("apiVersion", "kind", "namespace", "name", "uid")}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self._encode(entry)


def resolve_format(fmt: str, stream: TextIO | None = None) -> str:
    """``auto`` is JSON unless the stream (stderr by default) is a terminal: containers and log
    collectors get one object per line, a person at a terminal gets text."""
    if fmt != "auto":
        return fmt
    target = sys.stderr if stream is None else stream
    try:
        return "text" if target.isatty() else "json"
    except (AttributeError, ValueError):  # a closed or replaced stream: not a terminal
        return "json"


def configure_logging(level: str | int = "INFO", fmt: str = "auto") -> None:
    """Configure the root logger once for a process (``fmt``: auto, text or json)."""
    handler = logging.StreamHandler()
    if resolve_format(fmt) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
