"""API settings (``JOBQUEUE_API_*``). API keys are secrets: compared in constant time, never logged."""

from __future__ import annotations

import enum

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from jobqueue.settings import EnvFileSettings


class Scope(enum.StrEnum):
    """What a key may do. admin implies read and submit; submit implies nothing else."""

    SUBMIT = "submit"
    READ = "read"
    ADMIN = "admin"


class ApiSettings(EnvFileSettings):
    """Settings of the API process."""

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Comma-separated "key:scope1+scope2" entries, e.g. "s3cr3t:admin,k2:submit+read".
    keys: SecretStr = Field(default=SecretStr(""))
    # Open mode (no key needed) is refused unless the API listens on a loopback address.
    open_mode: bool = False
    max_body_bytes: int = Field(default=2_097_152, gt=0)

    def parsed_keys(self) -> dict[str, frozenset[Scope]]:
        """{key: scopes}; ValueError naming the entry when the setting is malformed."""
        result: dict[str, frozenset[Scope]] = {}
        for entry in filter(None, (e.strip() for e in self.keys.get_secret_value().split(","))):
            key, sep, scopes = entry.rpartition(":")
            if not sep or not key:
                raise ValueError("JOBQUEUE_API_KEYS entries look like 'key:scope+scope'")
            try:
                result[key] = frozenset(Scope(s) for s in scopes.split("+"))
            except ValueError as exc:
                raise ValueError(f"JOBQUEUE_API_KEYS: unknown scope in {scopes!r}") from exc
        return result
