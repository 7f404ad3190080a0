"""The log format: JSON unless stderr is a terminal, and JSON lines that survive hostile text."""

from __future__ import annotations

import io
import json
import logging

from jobqueue.log_config import JsonFormatter, resolve_format


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_text_on_a_terminal_and_json_anywhere_else() -> None:
    assert resolve_format("auto", Terminal()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    closed = io.StringIO()
    closed.close()
    assert resolve_format("auto", closed) == "json"
    assert resolve_format("text", io.StringIO()) == "text"
    assert resolve_format("json", Terminal()) == "json"


def test_a_json_line_stays_one_decodable_line_whatever_the_text() -> None:
    hostile = "a\x00b\ud800c\nd" + "é" * 3 + str(10**400)[:50]
    record = logging.LogRecord("jobqueue.worker.tasks", logging.ERROR, __file__, 1, "%s", (hostile,), None)
    record.__dict__.update(event="failed", task_id="q.1", attempt=10**30, error=hostile, unknown="dropped")
    line = JsonFormatter().format(record)
    assert "\n" not in line and line.isascii()
    entry = json.loads(line)
    assert entry["message"] == entry["error"] == hostile
    assert entry["attempt"] == 10**30 and entry["event"] == "failed" and "unknown" not in entry
    assert entry["ts"].endswith("Z") and entry["level"] == "ERROR"


def test_a_kopf_per_object_record_names_its_object_and_nothing_else_kopf_attaches() -> None:
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "Handler succeeded.", (), None)
    ref = {
        "apiVersion": "jobqueue.dev/v1alpha1",
        "kind": "WorkerPool",
        "name": "p",
        "uid": "u",
        "namespace": "n",
    }
    record.__dict__.update(k8s_ref=ref, k8s_skip=False, settings=object())
    line = json.loads(JsonFormatter().format(record))
    assert line["object"] == ref and "settings" not in line and "k8s_skip" not in line
