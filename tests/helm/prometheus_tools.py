"""The Prometheus binaries of Debian's ``prometheus`` package (``make deps`` installs it) and the chart's
alert rules as a plain Prometheus rule file.

Without the binaries the tests that need them skip with the command that installs them; under CI=true
they fail, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from helm.fixtures import VALUES_FILES, render

INSTALL = "apt-get install --no-install-recommends prometheus (make deps does it)"


def prometheus_tool(name: str) -> Path:
    """``promtool`` or ``prometheus`` from PATH (JOBQUEUE_TEST_PROMETHEUS_DIR overrides where to look)."""
    where = os.environ.get("JOBQUEUE_TEST_PROMETHEUS_DIR")
    found = shutil.which(name, path=where) if where else shutil.which(name)
    if found is None:
        reason = f"PROMETHEUS NOT INSTALLED: {name} missing; {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return Path(found)


def alert_groups(helm_bin: Path, *extra: str) -> list[dict[str, Any]]:
    """The rule groups of the chart's PrometheusRule, rendered with the all-on values."""
    (rule,) = [d for d in render(helm_bin, VALUES_FILES["all-on"], *extra) if d["kind"] == "PrometheusRule"]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def write_rule_file(helm_bin: Path, path: Path, *extra: str) -> Path:
    """The PrometheusRule's groups as the rule file a plain Prometheus (and promtool) reads."""
    path.write_text(yaml.safe_dump({"groups": alert_groups(helm_bin, *extra)}, sort_keys=False))
    return path
