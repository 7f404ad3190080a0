"""Message headers (jobqueue.headers) and the tracing module's promise to be optional (jobqueue.tracing)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from payload_strategies import hostile_text

from jobqueue.errors import ValidationError
from jobqueue.headers import (
    MAX_HEADERS,
    MAX_HEADERS_BYTES,
    check_headers,
    clean_headers,
    decode_headers,
    encode_headers,
    header_problem,
)
from jobqueue.tracing import merge_headers

pytestmark = pytest.mark.timeout(60)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_valid_headers_round_trip_through_their_wire_form() -> None:
    headers = {"traceparent": TRACEPARENT, "tracestate": "rojo=00f067aa0ba902b7", "x-request_id.v": "a b"}
    assert check_headers(headers) == headers
    assert decode_headers(encode_headers(headers)) == headers
    assert check_headers(None) == {} and decode_headers("") == {}


@given(st.dictionaries(hostile_text, hostile_text | st.integers() | st.none(), max_size=40))
@settings(max_examples=300, deadline=None)
def test_any_headers_are_accepted_valid_or_refused_and_clean_keeps_only_valid_ones(
    headers: dict[str, Any],
) -> None:
    try:
        checked = check_headers(headers)
    except ValidationError as exc:
        assert exc.field.startswith("headers")
    else:
        assert checked == headers
    kept = clean_headers(headers, "a test")
    assert len(kept) <= MAX_HEADERS and len(encode_headers(kept)) <= MAX_HEADERS_BYTES
    assert all(header_problem(k, v) is None for k, v in kept.items())
    # What is kept is storable everywhere: plain ASCII, no NUL.
    wire = encode_headers(kept)
    assert wire.isascii() and "\x00" not in wire and "\\u0000" not in wire


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '"traceparent"',
        "[" * 2000 + "]" * 2000,
        '{"a": "' + "x" * (MAX_HEADERS_BYTES + 1) + '"}',
        '{"a": 1e999999, "b": ' + "9" * 5000 + "}",
        '{"\\u0000": "v", "ok": "\\ud800", "fine": "yes"}',
    ],
)
def test_malformed_headers_read_back_are_dropped_with_a_warning_never_raised(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="jobqueue.headers"):
        decoded = decode_headers(raw, "default.t1")
    assert decoded in ({}, {"fine": "yes"})
    assert "header" in caplog.text


def test_the_size_limit_drops_what_does_not_fit_rather_than_everything() -> None:
    headers = {f"h{i:02d}": "v" * 1000 for i in range(6)}
    kept = clean_headers(headers, "a test")
    assert 0 < len(kept) < 6 and len(encode_headers(kept)) <= MAX_HEADERS_BYTES
    with pytest.raises(ValidationError, match="bytes"):
        check_headers(headers)


def test_jobqueue_never_imports_opentelemetry_when_it_is_not_installed() -> None:
    # None in sys.modules makes every import of it raise ImportError, as when the extra is absent.
    script = """
import sys
sys.modules["opentelemetry"] = None
from jobqueue import tracing
import jobqueue.broker.client, jobqueue.broker.aio, jobqueue.broker.workflows, jobqueue.worker.runtime
assert not tracing.installed()
with tracing.send_span(["default"]) as span:
    assert span is None
assert tracing.current_trace_headers() == {}
with tracing.process_span('{"traceparent": "x"}', task_id="t", name="n", queue="q", attempt=1) as span:
    tracing.record_outcome(span, "error", "boom", ValueError("boom"))
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout.strip().replace("'", '"')) == ["opentelemetry"]  # only the None entry


def test_the_trace_context_is_kept_whole_when_a_message_already_has_as_many_headers_as_allowed() -> None:
    own = {f"h{i:02d}": "v" for i in range(MAX_HEADERS)} | {"traceparent": "stale"}
    context = {"traceparent": TRACEPARENT, "tracestate": "rojo=1"}
    merged = merge_headers(dict(list(own.items())[1:]), context)
    assert len(merged) == MAX_HEADERS
    assert merged["traceparent"] == TRACEPARENT and merged["tracestate"] == "rojo=1"
    assert merge_headers({}, context) is context
