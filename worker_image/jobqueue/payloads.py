"""The one definition of a storable payload, and the escape that makes any task output storable.

A payload is storable when every store accepts it unchanged: it is JSON (no NaN / Infinity, integers
Python can print), nested at most ``MAX_DEPTH`` deep, and none of its strings (values and object keys)
holds a NUL (PostgreSQL jsonb and text refuse ``\\u0000``) or a lone surrogate (not UTF-8: Redis clients
and PostgreSQL refuse to encode it). Size limits come from Settings (``max_payload_bytes`` for args,
``max_result_bytes`` for a result, ``max_error_chars`` / ``max_traceback_chars`` for error text).

Input (args, kwargs, names, schedules) that breaks the rule is refused where it enters with a
ValidationError naming the path inside the payload (``args[0]``, ``kwargs.name``). Output a task produces
is never refused: ``escape_text`` / ``escape_value`` rewrite each offending code point as the six
characters of its JSON escape (NUL -> ``\\u0000``, U+DC80 -> ``\\udc80``, a literal backslash and five
characters), which every store accepts and a reader can still recognise.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jobqueue.errors import ValidationError

# Deep enough for any real document, shallow enough for every parser on the path: Python's json
# (recursion limit), Lua cjson (1000) and PostgreSQL jsonb (stack depth) all go deeper.
MAX_DEPTH = 128

# A NUL or a lone surrogate in a Python string. A surrogate *pair* cannot occur in a str (Python stores
# code points), so any surrogate code point is a lone one.
_UNSTORABLE_CHAR = re.compile("[\x00\ud800-\udfff]")
# In JSON text: a string (so brackets inside strings are not counted), and a bracket pair with no
# bracket inside (so each substitution pass removes one level of nesting).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_INNERMOST = re.compile(r"\[[^\[\]{}]*\]|\{[^\[\]{}]*\}")


def _depth_within(text: str, limit: int) -> bool:
    """Whether JSON ``text`` nests at most ``limit`` deep: strings blanked, then innermost bracket pairs
    removed one level per pass (each pass a C-speed regex substitution over a shrinking text)."""
    rest = _JSON_STRING.sub("0", text)
    for _ in range(limit):
        rest, removed = _INNERMOST.subn("0", rest)
        if not removed:
            return True
    return "[" not in rest and "{" not in rest


def _clean_json(text: str) -> bool:
    """True when compact JSON ``text`` written with ensure_ascii=False (serialization.dumps) is certainly
    storable. A NUL appears as the escape ``\\u0000`` in it, a surrogate as a raw code point; a false
    alarm (an escaped backslash before "u0000") only costs the exact walk."""
    if "\\u0000" in text:
        return False
    if not text.isascii():
        # Encoding fails exactly on a lone surrogate, and runs several times faster than a regex search
        # over non-ASCII text (measured: 1000 accented letters, 25 -> 3 µs).
        try:
            text.encode()
        except UnicodeEncodeError:
            return False
    # Nesting never exceeds the number of opening brackets: counting them settles most payloads.
    return text.count("[") + text.count("{") <= MAX_DEPTH or _depth_within(text, MAX_DEPTH)


def describe_char(char: str) -> str:
    """How an unstorable code point is named in an error message."""
    return "a NUL character" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"


def check_text(value: str, field: str) -> None:
    """ValidationError(field) when a string holds a NUL or a lone surrogate."""
    found = _UNSTORABLE_CHAR.search(value)
    if found is not None:
        raise ValidationError(field, f"contains {describe_char(found.group())}, which cannot be stored")


def _child(path: str, key: int | str) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]"


def find_unstorable(value: Any, path: str, depth: int = 0) -> tuple[str, str] | None:
    """(path, reason) of the first part of ``value`` that is not storable, or None.

    Walks the value itself (not its JSON), so the path names the element a caller wrote. Only types the
    JSON encoder accepts are descended; anything else is left for the encoder to refuse.
    """
    if depth > MAX_DEPTH:
        return path, f"is nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, str):
        found = _UNSTORABLE_CHAR.search(value)
        return None if found is None else (path, f"contains {describe_char(found.group())}")
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                found = _UNSTORABLE_CHAR.search(key)
                if found is not None:
                    # The key cannot be printed in the path (it is the problem): name its parent.
                    return path, f"has a key that contains {describe_char(found.group())}"
            hit = find_unstorable(item, _child(path, key if isinstance(key, str) else str(key)), depth + 1)
            if hit is not None:
                return hit
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            hit = find_unstorable(item, _child(path, index), depth + 1)
            if hit is not None:
                return hit
    return None


def check_encoded(value: Any, text: str, field: str) -> None:
    """ValidationError naming the path inside ``value`` when its compact JSON ``text`` (as
    serialization.dumps writes it) is not storable. Costs a few C-speed scans of ``text`` for the usual
    payload; only a suspicious one is walked."""
    if _clean_json(text):
        return
    hit = find_unstorable(value, field)
    if hit is not None:
        path, reason = hit
        raise ValidationError(path, f"{reason}, which cannot be stored")


def _escape_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def escape_text(value: str) -> str:
    """``value`` with each NUL and lone surrogate replaced by the text of its JSON escape (``\\u0000``).

    Total: never raises, and returns ``value`` itself when there is nothing to escape."""
    if _UNSTORABLE_CHAR.search(value) is None:
        return value
    return _UNSTORABLE_CHAR.sub(_escape_char, value)


def escape_value(value: Any, depth: int = 0) -> Any:
    """A copy of a JSON value with every string (values and keys) passed through ``escape_text``, and
    anything nested deeper than MAX_DEPTH replaced by a marker string. Total on JSON data."""
    if isinstance(value, str):
        return escape_text(value)
    if depth >= MAX_DEPTH and isinstance(value, (dict, list)):
        return f"<nested more than {MAX_DEPTH} levels deep>"
    if isinstance(value, dict):
        return {escape_text(str(k)): escape_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_value(v, depth + 1) for v in value]
    return value


def escape_json(text: str) -> str:
    """Compact JSON text whose strings are storable: ``text`` itself when it already is, else re-encoded
    through ``escape_value``. ``text`` must be JSON that jobqueue wrote (json.loads reads it back)."""
    if _clean_json(text):
        return text
    value = escape_value(json.loads(text))
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
