"""Message headers: the small string map a task message carries besides its arguments (the W3C trace
context ``traceparent`` / ``tracestate`` that jobqueue.tracing injects, or a caller's own correlation
ids). Pure: validation and the wire form, no I/O.

Headers are metadata, not payload, so the rule is stricter than a storable payload's (jobqueue.payloads):
at most ``MAX_HEADERS`` entries, names of letters, digits and ``-_.`` up to ``MAX_NAME_CHARS``, values
of printable ASCII up to ``MAX_VALUE_CHARS``, ``MAX_HEADERS_BYTES`` in all as JSON. Printable ASCII is
what the W3C trace context and baggage formats allow anyway, and it rules out a NUL, a lone surrogate
and every other character some store or log parser would choke on. Headers a caller gives are refused
with a ValidationError naming the header; headers that arrive from elsewhere (a propagator's output,
a message read back from Redis) are never trusted to be valid either: ``clean_headers`` and
``decode_headers`` drop what breaks the rule with a warning, so a bad header can cost a trace link but
never an enqueue or an attempt.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from jobqueue.errors import ValidationError

log = logging.getLogger(__name__)

MAX_HEADERS = 16
MAX_NAME_CHARS = 64
# tracestate is at most 512 characters (W3C trace context, 32 list members); baggage may be longer but
# is the first thing a bounded carrier cuts.
MAX_VALUE_CHARS = 1024
MAX_HEADERS_BYTES = 4096

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_VALUE = re.compile(r"[\x20-\x7e]*")


def header_problem(name: object, value: object) -> str | None:
    """Why one header breaks the rule, or None when it is valid."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS or not _NAME.fullmatch(name):
        return f"a header name must be 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'"
    if not isinstance(value, str):
        return "a header value must be a string"
    if len(value) > MAX_VALUE_CHARS:
        return f"a header value must be at most {MAX_VALUE_CHARS} characters"
    if not _VALUE.fullmatch(value):
        return "a header value must be printable ASCII (no NUL, no control or non-ASCII character)"
    return None


def check_headers(headers: object) -> dict[str, str]:
    """``headers`` as a new dict when every entry is valid; ValidationError('headers' or
    'headers.<name>') otherwise. For headers a caller gives: refused whole, never silently trimmed."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ValidationError("headers", "must be an object of string values")
    if len(headers) > MAX_HEADERS:
        raise ValidationError("headers", f"at most {MAX_HEADERS} headers")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            # The name is shown only when it is a plain one: a hostile name must not reach a log line.
            label = name if isinstance(name, str) and _NAME.fullmatch(name) else "?"
            raise ValidationError(f"headers.{label[:MAX_NAME_CHARS]}", problem)
        checked[name] = value
    if len(encode_headers(checked)) > MAX_HEADERS_BYTES:
        raise ValidationError("headers", f"at most {MAX_HEADERS_BYTES} bytes in all")
    return checked


def clean_headers(headers: Mapping[Any, Any], origin: str) -> dict[str, str]:
    """The valid part of headers that come from elsewhere (``origin`` says where, for the warning):
    invalid entries, entries past MAX_HEADERS and entries that would pass MAX_HEADERS_BYTES are dropped
    with one warning. Never raises."""
    kept: dict[str, str] = {}
    dropped = 0
    size = 2  # the braces of the JSON object
    for name, value in headers.items():
        if len(kept) >= MAX_HEADERS or header_problem(name, value) is not None:
            dropped += 1
            continue
        assert isinstance(name, str) and isinstance(value, str)  # header_problem checked both
        entry = len(json.dumps(name)) + len(json.dumps(value)) + 2  # the colon and the comma
        if size + entry > MAX_HEADERS_BYTES:
            dropped += 1
            continue
        size += entry
        kept[name] = value
    if dropped:
        log.warning("%d invalid or excess message headers from %s dropped", dropped, origin)
    return kept


def encode_headers(headers: Mapping[str, str]) -> str:
    """The wire form of valid headers (compact JSON, ASCII: the values are printable ASCII)."""
    return json.dumps(headers, separators=(",", ":"), sort_keys=True)


def decode_headers(raw: str, task_id: str = "") -> dict[str, str]:
    """Headers read back from a message ('' = none). Malformed JSON or invalid entries (a message written
    by hand, or by another program) are dropped with a warning: never an exception on the worker's path."""
    if not raw:
        return {}
    if len(raw) > MAX_HEADERS_BYTES:
        log.warning("task %s: message headers over %d bytes ignored", task_id, MAX_HEADERS_BYTES)
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        log.warning("task %s: message headers are not JSON; ignored", task_id)
        return {}
    if not isinstance(value, dict):
        log.warning("task %s: message headers are not a JSON object; ignored", task_id)
        return {}
    return clean_headers(value, f"task {task_id}")
