"""The pool forms' text-to-JSON reading (static/js/pool_form.js) under node: typed text becomes a number
only when it is a whole number; anything else reaches the API as text, so its 422 names the field
(NaN would have been sent as null and refused as "missing", or worse, accepted as a default)."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources
from typing import Any

import pytest

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(
    NODE is None, reason="node is not installed: the UI's pure modules are not checked"
)


def call(function: str, *args: Any) -> Any:
    """``function(*args)`` from pool_form.js, as JSON (undefined members dropped, as fetch sends them)."""
    module = resources.files("jobqueue_api").joinpath("static", "js", "pool_form.js")
    script = (
        f"import * as m from {json.dumps('file://' + str(module))};"
        f"const out = m.{function}(...{json.dumps(list(args))});"
        "console.log(out === undefined ? 'null' : JSON.stringify(out));"
    )
    assert NODE is not None
    out = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", 3), (" 12 ", 12), ("0", 0), ("-1", -1), ("", None), ("  ", None), ("2.5", "2.5"), ("1e3", "1e3"),
     ("abc", "abc"), ("9" * 400, "9" * 400), ("9007199254740993", "9007199254740993"), ("\x00", "\x00"),
     ("\ud800", "\ud800")],
)  # fmt: skip
def test_a_count_is_a_number_only_when_whole(text: str, value: Any) -> None:
    # Huge digits stay text: as a number they lose digits or become Infinity, which JSON sends as null.
    assert call("countValue", text) == value


def test_queues_split_on_commas_and_spaces() -> None:
    assert call("splitQueues", " emails, receipts  reports,,") == ["emails", "receipts", "reports"]
    assert call("splitQueues", "") == []


def test_the_create_body_carries_autoscaling_only_when_switched_on() -> None:
    values = {"name": " emails ", "queues": "a,b", "concurrency": "4", "replicas": "", "min": "1", "max": "x"}
    assert call("createPoolBody", values) == {"name": "emails", "queues": ["a", "b"], "concurrency": 4}
    body = call("createPoolBody", {**values, "autoscaling": True, "target": "20"})
    assert body["autoscaling"] == {
        "enabled": True,
        "min_replicas": 1,
        "max_replicas": "x",
        "target_tasks_per_replica": 20,
    }


def test_desired_replicas_name_the_autoscaler_bounds() -> None:
    held = {"replicas": 2, "autoscaling": {"enabled": False}, "status": {"desired_replicas": 2}}
    auto = {"replicas": 2, "autoscaling": {"enabled": True, "min_replicas": 1, "max_replicas": 8},
            "status": {"desired_replicas": None}}  # fmt: skip
    assert call("desiredText", held) == "2"
    assert call("desiredText", auto) == "auto (1\u20138)"
    assert call("desiredText", {**auto, "status": {"desired_replicas": 3}}) == "3 (auto 1\u20138)"
