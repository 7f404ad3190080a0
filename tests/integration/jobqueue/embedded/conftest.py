"""Fixtures of the embedded servers' tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """A fresh directory every user can reach (as a checkout under /home or /srv is): as root, the
    PostgreSQL server runs as another user, who must get through it. pytest's tmp_path is private."""
    base = Path(tempfile.mkdtemp(prefix="jobqueue-test-embedded-"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)
