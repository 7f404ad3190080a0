"""docs/configuration.md lists every setting of every process, generated from the settings classes
(scripts/configuration_doc.py): this fails when a setting is added, removed, renamed, re-defaulted or
re-described without regenerating the document."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import Field

from jobqueue.settings import EnvFileSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "configuration_doc", ROOT / "scripts" / "configuration_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_document_matches_the_settings_classes() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert generator().updated(doc) == doc, "run: .venv/bin/python scripts/configuration_doc.py"


def test_every_process_s_settings_are_listed() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for variable in (
        "JOBQUEUE_REDIS_URL",
        "JOBQUEUE_DEFAULT_MAX_RETRIES",
        "JOBQUEUE_DEFAULT_TIMEOUT",
        "JOBQUEUE_RECORD_BATCH_SIZE",
        "JOBQUEUE_API_KEYS",
        "JOBQUEUE_API_URL",
        "JOBQUEUE_OPERATOR_INTERVAL_SECONDS",
    ):
        assert f"`{variable}`" in doc


def test_a_setting_without_a_description_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    class Undocumented(EnvFileSettings):
        model_config = SettingsConfigDict(env_prefix="JOBQUEUE_X_")
        knob: int = Field(default=1)

    module = generator()
    monkeypatch.setattr(module, "SECTIONS", [(Undocumented, "X", "nobody")])
    with pytest.raises(SystemExit, match=r"Undocumented\.knob has no description"):
        module.render()
