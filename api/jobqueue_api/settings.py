"""API settings (``JOBQUEUE_API_*``). API keys are secrets: compared in constant time, never logged."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field, SecretStr

from jobqueue.settings import EnvFileSettings, SettingsConfigDict


class Scope(enum.StrEnum):
    """What a key may do. admin implies read and submit; submit implies nothing else."""

    SUBMIT = "submit"
    READ = "read"
    ADMIN = "admin"


class ApiSettings(EnvFileSettings):
    """Settings of the API process."""

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_API_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address the API listens on")
    port: int = Field(description="port the API listens on", default=8000, ge=1, le=65535)
    # Comma-separated "key:scope1+scope2" entries, e.g. "s3cr3t:admin,k2:submit+read".
    keys: SecretStr = Field(
        description="comma-separated key:scope+scope entries, e.g. s3cr3t:admin,k2:submit+read (secret)",
        default=SecretStr(""),
    )
    # Open mode (no key needed) is refused unless the API listens on a loopback address.
    open_mode: bool = Field(
        default=False, description="no key needed; refused unless the API listens on a loopback address"
    )
    max_body_bytes: int = Field(description="largest request body accepted", default=2_097_152, gt=0)
    # Slow clients (slowloris): the whole request head must arrive within header_timeout_seconds of the
    # connection opening (or of the previous response), the whole body within body_timeout_seconds of the
    # request head; an idle keep-alive connection is closed after keep_alive_seconds.
    header_timeout_seconds: float = Field(
        description="the request head must arrive within this many seconds of the connection opening",
        default=10.0,
        gt=0,
        le=3600,
    )
    body_timeout_seconds: float = Field(
        description="the request body must arrive within this many seconds of the request head (else 408)",
        default=30.0,
        gt=0,
        le=3600,
    )
    keep_alive_seconds: int = Field(
        description="an idle keep-alive connection is closed after this many seconds",
        default=5,
        ge=1,
        le=3600,
    )
    # Comma-separated Host header values the API answers ("name" or "name:port"; "*" = any). Empty: any
    # with API keys, only loopback names in open mode (so DNS rebinding cannot reach an open API).
    allowed_hosts: str = Field(
        description="comma-separated Host header values the API answers (* = any); empty: any with keys, "
        "loopback names only in open mode",
        default="",
    )
    # Who runs the pools of /api/v1/worker-pools: "kubernetes" = WorkerPool resources in pools_namespace
    # (the chart sets it), "local" = the supervisor of `jobqueue up` (which sets it), through Redis;
    # "none" = pool routes answer 409 saying how to configure one.
    pools_backend: Literal["none", "local", "kubernetes"] = Field(
        default="none",
        description="who runs worker pools: kubernetes (WorkerPool resources), local (jobqueue up) or none",
    )
    pools_namespace: str = Field(
        default="default",
        description="namespace of the WorkerPool resources (kubernetes backend)",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    )
    pools_default_image: str = Field(
        default="", description="worker image of a pool created without one (kubernetes backend)"
    )
    # One structured line per request (jobqueue_api.access_log); off for an API behind a proxy that logs.
    access_log: bool = Field(
        default=True,
        description="log one line per request (method, route template, status, duration, key id, client)",
    )

    def parsed_allowed_hosts(self) -> frozenset[str]:
        """The Host header values to answer (lower case); {"*"} means any."""
        hosts = frozenset(h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip())
        if hosts:
            return hosts
        if self.open_mode:
            bound = f"[{self.host}]" if ":" in self.host else self.host
            return frozenset({"localhost", "127.0.0.1", "[::1]", bound.lower()})
        return frozenset({"*"})

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
