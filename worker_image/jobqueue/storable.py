"""Makes task output storable before the acker sends it: task output is never refused.

A task controls its result, exception message and traceback, and any of them may hold what no store
accepts (a NUL, a lone surrogate from ``os.fsdecode`` of a bad file name) or be huge. The acker thread must
never raise on them (it would stop recording every outcome of the worker), so
``broker.completion_calls.storable_outcome`` passes each outcome through these total functions: text is
escaped (jobqueue.payloads.escape_text), error text is cut to its limit, and a result over
``max_result_bytes`` becomes a non-retryable error.
"""

from __future__ import annotations

from jobqueue.payloads import escape_json, escape_text
from jobqueue.settings import Settings

UNSTORABLE = "UnstorableOutcome: the task's result or error could not be encoded (see the worker log)"


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (a lone surrogate counted as 3 bytes, as before it is escaped)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def storable_result(settings: Settings, result_json: str) -> tuple[str, str]:
    """(storable result JSON, "") or ("null", error text) when the result is over the size limit."""
    if result_json == "null":  # the usual result: nothing to check
        return result_json, ""
    limit = settings.max_result_bytes
    # Characters never outnumber UTF-8 bytes, so most results are judged without encoding them.
    size = len(result_json)
    if size > limit or (size * 4 > limit and utf8_length(result_json) > limit):
        return "null", (
            f"ResultTooLarge: the task's result is {utf8_length(result_json)} bytes of JSON, over the "
            f"{limit}-byte limit (JOBQUEUE_MAX_RESULT_BYTES); store large data elsewhere and return a "
            "reference to it"
        )
    return escape_json(result_json), ""


def storable_error(text: str, limit: int) -> str:
    """Error text or traceback cut to ``limit`` characters and escaped."""
    return escape_text(text[:limit])
