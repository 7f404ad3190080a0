"""The UI's hash reading (static/js/hash.js) under node: a malformed link is "no such page", not a throw
(issue 15, defect 18)."""

from __future__ import annotations

import json
import shutil
import subprocess
from importlib import resources

import pytest

NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed: the UI's pure modules are not checked")
@pytest.mark.parametrize(
    ("hash_", "path"),
    [("", "/"), ("#", "/"), ("#/tasks/q.1", "/tasks/q.1"), ("#/queues/a%20b", "/queues/a b"), ("#%", None),
     ("#/tasks/%E0%A4", None), ("#/queues/%zz", None)],
)  # fmt: skip
def test_a_malformed_hash_reads_as_no_page(hash_: str, path: str | None) -> None:
    module = resources.files("jobqueue_api").joinpath("static", "js", "hash.js")
    script = (
        f"import {{ hashPath }} from {json.dumps('file://' + str(module))};"
        f"console.log(JSON.stringify(hashPath({json.dumps(hash_)})));"
    )
    assert NODE is not None
    out = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert json.loads(out.stdout) == path
