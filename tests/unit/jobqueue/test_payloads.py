"""The storable-payload rule (jobqueue.payloads): refused input names its path; escaped output is always
storable; generated hostile JSON never gets past the check unnoticed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from payload_strategies import PROFILE, deep, deep_values, json_values

from jobqueue import Settings, ValidationError
from jobqueue.broker.batch_enqueue import plan_enqueue
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.enqueue_call import build_enqueue
from jobqueue.payloads import (
    MAX_DEPTH,
    check_encoded,
    escape_json,
    escape_text,
    escape_value,
    find_unstorable,
)
from jobqueue.schedules.model import Schedule, make_schedule
from jobqueue.serialization import dumps


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (["a\x00b"], {}, "args[0]"),
        (["ok", {"x": ["\ud800"]}], {}, "args[1].x[0]"),
        ([], {"name": "bad \udc80 byte"}, "kwargs.name"),
        ([], {"na\x00me": 1}, "kwargs"),
        ([{"key with space": "\x00"}], {}, 'args[0]["key with space"]'),
        ([deep(MAX_DEPTH + 5)], {}, "args" + "[0]" * (MAX_DEPTH + 1)),
    ],
)
def test_unstorable_args_are_refused_naming_the_path(
    args: list[Any], kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        build_enqueue(Settings(), make_request("t", args, kwargs))
    assert info.value.field == field


@pytest.mark.parametrize("name", ["t\x00", "t\ud800"])
def test_task_names_and_unique_keys_are_checked(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        make_request(name)
    with pytest.raises(ValidationError, match="unique_key"):
        make_request("t", unique_key=name)


def test_a_batch_error_names_the_request_index() -> None:
    requests = [make_request("t", [1]), make_request("t", [2]), make_request("t", ["\ud800"])]
    with pytest.raises(ValidationError) as info:
        plan_enqueue(Settings(), requests)
    assert (info.value.index, info.value.field) == (2, "args[0]")


def test_an_escaped_backslash_is_not_mistaken_for_a_nul() -> None:
    value = ["\\u0000 is how JSON writes a NUL"]
    check_encoded(value, dumps(value, "args"), "args")  # no error: the walk finds nothing


def test_escape_is_documented_and_total() -> None:
    assert escape_text("a\x00b\ud800c") == "a\\u0000b\\ud800c"
    assert escape_text("plain") == "plain"
    assert escape_value({"k\x00": ["\udc80"]}) == {"k\\u0000": ["\\udc80"]}
    text = dumps(deep(MAX_DEPTH + 10), "result")
    assert find_unstorable(json.loads(escape_json(text)), "result") is None


@PROFILE
@given(json_values())
def test_generated_json_is_refused_or_storable(value: Any) -> None:
    try:
        text = dumps(value, "args")
    except ValidationError:
        return  # not JSON at all (e.g. an int too long to print): refused before the check
    try:
        check_encoded(value, text, "args")
    except ValidationError as exc:
        assert exc.field.startswith("args")
        assert find_unstorable(value, "args") is not None
        return
    assert find_unstorable(value, "args") is None
    text.encode("utf-8")  # what the Redis client will do
    assert "\\u0000" not in json.dumps(value)  # what PostgreSQL jsonb refuses


@PROFILE
@given(json_values())
def test_escaped_output_is_always_storable(value: Any) -> None:
    try:
        text = dumps(value, "result")
    except ValidationError:
        return
    escaped = escape_json(text)
    escaped.encode("utf-8")
    assert find_unstorable(json.loads(escaped), "result") is None


@PROFILE
@given(deep_values())
def test_nesting_is_bounded(value: Any) -> None:
    text = dumps(value, "args")
    depth = text.count("[")
    if depth <= MAX_DEPTH:
        check_encoded(value, text, "args")
    else:
        with pytest.raises(ValidationError, match="nested"):
            check_encoded(value, text, "args")


@PROFILE
@given(json_values(), json_values())
def test_a_schedule_is_refused_or_reads_back_equal(arg: Any, value: Any) -> None:
    try:
        schedule = make_schedule("s", cron="* * * * *", task="t", args=[arg], kwargs={"k": value})
    except ValidationError as exc:
        assert exc.field.startswith(("args", "kwargs"))
        assert find_unstorable([arg], "args") or find_unstorable({"k": value}, "kwargs")
        return
    text = schedule.to_json()
    text.encode("utf-8")
    assert Schedule.from_json(text, "s") == schedule
