"""Settings read from ``JOBQUEUE_*`` environment variables; the only module that reads the environment."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration. Build once per process and pass it down."""

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_", extra="ignore")

    redis_url: SecretStr = Field(default=SecretStr("redis://127.0.0.1:6379/0"))
    key_prefix: str = Field(default="jq", pattern=r"^[A-Za-z0-9_\-:]{1,32}$")
    # A lease outlives the worker's heartbeat interval several times over, so one slow heartbeat never
    # loses a lease; a dead worker's tasks are back in the queue within lease_seconds.
    lease_seconds: float = Field(default=30.0, gt=0.2)
    heartbeat_seconds: float = Field(default=5.0, gt=0.05)
    result_ttl_seconds: int = Field(default=86_400, gt=0)
    max_payload_bytes: int = Field(default=1_048_576, gt=0)
    # A task's result is held in Redis for its TTL and served whole by the API: bounded like args, yet
    # larger, since results are often bigger than the arguments that asked for them. A larger result
    # ends the attempt FAILED (ResultTooLarge), never stored. See docs/guarantees.md.
    max_result_bytes: int = Field(default=4 * 1_048_576, gt=0)
    # Only results up to this size travel in the event stream (the recorder's copy); a larger one stays in
    # the task hash for its TTL and the durable record notes its size (one bounded stream entry per task).
    max_event_result_bytes: int = Field(default=65_536, ge=0)
    # Error text and traceback of an attempt are cut to these many characters (a task controls them).
    max_error_chars: int = Field(default=10_000, gt=0)
    max_traceback_chars: int = Field(default=20_000, gt=0)
    max_lost_leases: int = Field(default=3, ge=0)
    events_max_length: int = Field(default=100_000, gt=0)
    retry_history_max: int = Field(default=50, gt=0)
    promote_batch: int = Field(default=500, gt=0)
    socket_timeout_seconds: float = Field(default=10.0, gt=0)
    database_url: SecretStr | None = None
    # In Kubernetes the worker id is the pod name (downward API), so the operator can match heartbeats
    # to pods.
    pod_name: str | None = Field(default=None, validation_alias=AliasChoices("POD_NAME", "JOBQUEUE_POD_NAME"))

    @property
    def effective_heartbeat_seconds(self) -> float:
        """Heartbeat interval, never more than a third of the lease so two misses still keep it."""
        return min(self.heartbeat_seconds, self.lease_seconds / 3)


class ApiClientSettings(BaseSettings):
    """Where the CLI finds the REST API: ``JOBQUEUE_API_URL`` and ``JOBQUEUE_API_KEY`` (one key, as
    opposed to the server's ``JOBQUEUE_API_KEYS`` list)."""

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_API_", extra="ignore")

    url: str | None = None
    key: SecretStr | None = None
