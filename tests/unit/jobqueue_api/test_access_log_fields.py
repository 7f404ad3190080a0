"""The access log's fields, pure: the key id never reveals the key, hostile input never breaks a line."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest

from jobqueue.log_config import JsonFormatter
from jobqueue_api.access_log import access_fields, key_ids, path_templates, request_key_id

pytestmark = pytest.mark.timeout(30)

IDS = key_ids({"k-admin": None, "k-read": None})
TEMPLATES = path_templates(["/api/v1/tasks/{task_id}", "/api/v1/tasks/batch", "/api/v1/tasks"])


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, ""),
        ("Bearer k-read", hashlib.sha256(b"k-read").hexdigest()[:12]),
        ("bearer  k-admin ", hashlib.sha256(b"k-admin").hexdigest()[:12]),
        ("Bearer k-admin-not", "unknown"),
        ("Basic k-admin", "unknown"),
        ("Bearer \x00\udcff" + "x" * 100_000, "unknown"),
    ],
)
def test_the_key_id_is_a_fingerprint_of_a_configured_key_only(
    authorization: str | None, expected: str
) -> None:
    assert request_key_id(authorization, IDS) == expected


def test_a_request_refused_before_routing_gets_the_template_of_the_path_it_asked_for() -> None:
    scope = {"method": "POST", "path": "/api/v1/tasks/batch", "client": ("10.0.0.7", 5123), "headers": []}
    fields = access_fields(scope, 401, 0.25, IDS, TEMPLATES)
    assert (fields["route"], fields["client"], fields["key_id"]) == ("/api/v1/tasks/batch", "10.0.0.7", "")
    scope["path"] = "/api/v1/tasks/default.0192f0c2a1b27c3d8e9f0a1b2c3d4e5f"
    assert access_fields(scope, 401, 0.25, IDS, TEMPLATES)["route"] == "/api/v1/tasks/{task_id}"


def test_a_hostile_unmatched_path_is_truncated_and_its_line_is_valid_json() -> None:
    scope = {"method": "GET", "path": "/\x00\ud800" + "é" * 10_000, "client": None, "headers": []}
    fields = access_fields(scope, 404, 1.0, IDS, TEMPLATES)
    assert fields["route"] is None and len(fields["path"]) == 200 and fields["client"] == ""

    record = logging.LogRecord(
        "jobqueue_api.access", logging.INFO, __file__, 1, "GET %s", (fields["path"],), None
    )
    record.__dict__.update(fields)
    line = JsonFormatter().format(record)
    assert line.isascii() and json.loads(line)["path"] == fields["path"]
