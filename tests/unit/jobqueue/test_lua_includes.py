"""The Lua include mechanism: shared workflow rules are spliced into the scripts that need them."""

from __future__ import annotations

import pytest

from jobqueue.broker.scripts import SCRIPT_NAMES, script_source

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("name", ["enqueue", "ack", "fail", "cancel", "recover"])
def test_workflow_library_is_spliced_in(name: str) -> None:
    source = script_source(name)
    assert not any(line.startswith("--@include") for line in source.splitlines())
    assert "local function jq_cancel_descendants" in source


def test_library_is_not_a_script_of_its_own() -> None:
    assert "_workflow" not in SCRIPT_NAMES
    with pytest.raises(KeyError):
        script_source("_workflow")
