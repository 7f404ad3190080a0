"""Operator settings from ``JOBQUEUE_OPERATOR_*`` environment variables (the Redis connection comes from
the core's own ``JOBQUEUE_*`` settings: JOBQUEUE_REDIS_URL, JOBQUEUE_KEY_PREFIX)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """How the operator runs. Build once in the entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_OPERATOR_", extra="ignore")

    # Empty with all_namespaces False means the operator's own namespace is not guessed: one must be named.
    namespaces: list[str] = Field(default_factory=list)
    all_namespaces: bool = False
    # Seconds between reconciles of each resource's live state (autoscaler, health, status).
    interval_seconds: float = Field(default=5.0, gt=0)
    # Seconds to wait before retrying when Redis or the API server is unreachable.
    retry_delay_seconds: float = Field(default=5.0, gt=0)
    metrics_host: str = "0.0.0.0"  # noqa: S104 (scraped from inside the cluster)
    metrics_port: int = Field(default=9108, ge=0, le=65535)
    liveness_endpoint: str = "http://0.0.0.0:8080/healthz"
