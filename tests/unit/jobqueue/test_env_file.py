"""`.env` support: every settings class reads JOBQUEUE_ENV_FILE (else ./.env) after the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobqueue.errors import ConfigurationError
from jobqueue.record.settings import RecordSettings
from jobqueue.settings import ApiClientSettings, Settings
from jobqueue_api.settings import ApiSettings
from jobqueue_operator.settings import OperatorSettings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in (
        "JOBQUEUE_KEY_PREFIX",
        "JOBQUEUE_API_PORT",
        "JOBQUEUE_RECORD_BATCH_SIZE",
        "JOBQUEUE_ENV_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("JOBQUEUE_OPERATOR_INTERVAL_SECONDS", raising=False)
    monkeypatch.delenv("JOBQUEUE_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_every_settings_class_reads_the_named_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / "local.env"
    env.write_text(
        "# comments and unrelated keys are fine\n"
        "OTHER_TOOL=1\n"
        "JOBQUEUE_KEY_PREFIX=fromfile\n"
        "JOBQUEUE_API_PORT=8123\n"
        "JOBQUEUE_API_URL=http://api.example:8000\n"
        "JOBQUEUE_RECORD_BATCH_SIZE=77\n"
        "JOBQUEUE_OPERATOR_INTERVAL_SECONDS=2.5\n"
    )
    clean_env.setenv("JOBQUEUE_ENV_FILE", str(env))
    assert Settings().key_prefix == "fromfile"
    assert ApiSettings().port == 8123
    assert ApiClientSettings().url == "http://api.example:8000"
    assert RecordSettings().batch_size == 77
    assert OperatorSettings().interval_seconds == 2.5


def test_dot_env_in_the_working_directory_is_read_and_the_environment_wins(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("JOBQUEUE_KEY_PREFIX=dotenv\nJOBQUEUE_LEASE_SECONDS=12\n")
    assert Settings().key_prefix == "dotenv"
    clean_env.setenv("JOBQUEUE_KEY_PREFIX", "fromenv")
    settings = Settings()
    assert (settings.key_prefix, settings.lease_seconds) == ("fromenv", 12.0)
    assert Settings(key_prefix="explicit").key_prefix == "explicit"


def test_an_empty_variable_turns_the_file_off(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JOBQUEUE_KEY_PREFIX=dotenv\n")
    clean_env.setenv("JOBQUEUE_ENV_FILE", "")
    assert Settings().key_prefix == "jq"


def test_a_missing_named_file_is_a_configuration_error(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("JOBQUEUE_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(ConfigurationError, match="JOBQUEUE_ENV_FILE"):
        Settings()


def test_invalid_values_in_the_file_are_refused_naming_the_field(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("JOBQUEUE_LEASE_SECONDS=-1\n")
    with pytest.raises(ValueError, match="lease_seconds"):
        Settings()


def test_a_file_that_is_not_utf8_is_one_configuration_error(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_bytes(b"UNRELATED=\xff\xfe\x00junk\nJOBQUEUE_KEY_PREFIX=ok\n")
    with pytest.raises(ConfigurationError, match=r"cannot read the settings file '\.env'"):
        Settings()
