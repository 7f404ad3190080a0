"""Settings read from ``JOBQUEUE_*`` environment variables; the only module that reads the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr
from pydantic.fields import FieldInfo

from jobqueue.errors import ConfigurationError

# Names the dotenv file every settings class reads after the environment; unset = ./.env if present, and
# empty = none. Read when settings are built (never at import), so each process decides for itself.
ENV_FILE_VARIABLE = "JOBQUEUE_ENV_FILE"
DEFAULT_ENV_FILE = ".env"


def env_file() -> Path | None:
    """The dotenv file to read: $JOBQUEUE_ENV_FILE (which must exist), else ./.env, or None when
    JOBQUEUE_ENV_FILE is empty. ``./.env`` is optional: a missing one is no error."""
    named = os.environ.get(ENV_FILE_VARIABLE)
    if named is None:
        return Path(DEFAULT_ENV_FILE)
    if not named:
        return None
    path = Path(named)
    if not path.is_file():
        raise ConfigurationError(f"{ENV_FILE_VARIABLE}: {named!r} is not a readable file")
    return path


class SettingsConfigDict(ConfigDict, total=False):
    """A settings class's model_config: pydantic's, plus the prefix of its environment variables."""

    env_prefix: str


class EnvFileSettings(BaseModel):
    """Base of every jobqueue settings class: a value comes from the constructor, else the environment,
    else the dotenv file (:func:`env_file`), else the default. The environment wins over the file, as in
    docker compose and most twelve-factor tooling, so a deployment can always override a checked-in file.

    Variable names are ``env_prefix`` + the field name, matched without regard to case, or the names of a
    field's ``validation_alias``. A list, dict or model field is read as JSON. What is read goes through
    the model's validation, so a bad value is a pydantic ValidationError naming the field.

    This is what pydantic-settings did for these classes, in a page: its import was a quarter of the
    worker's start-up time (docs/benchmarks.md, cold start)."""

    # populate_by_name: a constructor may name a field or its alias, as pydantic-settings allowed.
    model_config: ClassVar[SettingsConfigDict] = SettingsConfigDict(
        extra="ignore", validate_default=True, populate_by_name=True
    )

    def __init__(self, **values: Any) -> None:
        super().__init__(**_gather(type(self), values))


def _gather(cls: type[EnvFileSettings], given: dict[str, Any]) -> dict[str, Any]:
    """The constructor's values, plus each field it does not name from the environment, else the file."""
    environment = {name.lower(): value for name, value in os.environ.items()}
    path = env_file()
    from_file: Mapping[str, str | None] | None = None
    prefix = cls.model_config.get("env_prefix", "")
    values = dict(given)
    for name, field in cls.model_fields.items():
        variables = _variables(prefix, name, field)
        if name in given or any(variable in given for variable in variables):
            continue
        raw = next((environment[v.lower()] for v in variables if v.lower() in environment), None)
        if raw is None and path is not None:
            if from_file is None:  # read once, and only when the environment left a field unset
                from_file = _read_file(path)
            raw = next(
                (from_file[v.lower()] for v in variables if from_file.get(v.lower()) is not None), None
            )
        if raw is not None:
            values[name] = _parse(variables[0], field, raw)
    return values


def _variables(prefix: str, name: str, field: FieldInfo) -> list[str]:
    """The variables a field is read from, in the order they are tried."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{prefix}{name}"]


def _read_file(path: Path) -> dict[str, str | None]:
    """The dotenv file's variables, names lower-cased (python-dotenv's syntax: quotes, ``export``,
    comments, ``${VAR}`` expansion)."""
    if not path.is_file():  # ./.env is optional (a named file was checked by env_file)
        return {}
    # Imported only when a file is read: most processes (a pod) have none.
    from dotenv import dotenv_values  # noqa: PLC0415

    try:
        read = dotenv_values(path, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read the settings file {str(path)!r}: {exc}") from exc
    return {name.lower(): value for name, value in read.items()}


def _parse(variable: str, field: FieldInfo, raw: str) -> Any:
    """A variable's text as the field takes it: JSON for a list, dict or model field, else the text
    (pydantic converts it)."""
    if not _is_complex(field.annotation):
        return raw
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{variable.upper()}: not valid JSON ({exc})") from exc


def _is_complex(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_is_complex(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin in (list, set, frozenset, tuple, dict):
        return True
    return isinstance(annotation, type) and issubclass(
        annotation, list | set | frozenset | tuple | dict | BaseModel
    )


class Settings(EnvFileSettings):
    """Process-wide configuration. Build once per process and pass it down."""

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_", extra="ignore")

    redis_url: SecretStr = Field(
        description="Redis to use: redis://, rediss://, Sentinel or Cluster URL (secret: never logged)",
        default=SecretStr("redis://127.0.0.1:6379/0"),
    )
    # Off by default: WAIT costs a round trip to the replicas on every enqueue and ack batch. With it, an
    # enqueue, workflow or ack acknowledged to its caller is on N replicas, so a failover cannot lose it
    # (docs/operations.md, "Failover").
    redis_wait_replicas: int = Field(
        description="enqueues, workflow submits and acks wait until this many Redis replicas hold them "
        "(WAIT; 0 = do not wait)",
        default=0,
        ge=0,
        le=64,
    )
    redis_wait_timeout_seconds: float = Field(
        description="longest an enqueue or ack waits for JOBQUEUE_REDIS_WAIT_REPLICAS replicas before it "
        "raises ReplicationIncomplete",
        default=1.0,
        gt=0,
        le=60,
    )
    # Apart from the URL so that the URL can be plain configuration (a Helm value) and only the password
    # a secret (the chart's redis.external.passwordSecret reads it from a Kubernetes Secret).
    redis_password: SecretStr | None = Field(
        description="password of the Redis server(s) JOBQUEUE_REDIS_URL names, for a URL without one (a URL "
        "with a password too is refused; secret: never logged)",
        default=None,
    )
    # A worker that starts before Redis answers (a Helm install, a node back before Redis, a failover)
    # waits instead of exiting: in Kubernetes each exit is restarted later than the one before (up to five
    # minutes apart), so the workers would come back long after Redis did.
    redis_startup_wait_seconds: float = Field(
        description="how long a starting worker waits for Redis to answer before it exits with code 2 "
        "(0: exit at once; a refused password never waits)",
        default=120.0,
        ge=0,
        le=86400,
    )
    key_prefix: str = Field(
        description="prefix of every key; several deployments can share one Redis",
        default="jq",
        pattern=r"^[A-Za-z0-9_\-:]{1,32}$",
    )
    # A lease outlives the worker's heartbeat interval several times over, so one slow heartbeat never
    # loses a lease; a dead worker's tasks are back in the queue within lease_seconds.
    lease_seconds: float = Field(
        description="how long a leased task stays with a worker without a heartbeat", default=30.0, gt=0.2
    )
    heartbeat_seconds: float = Field(
        description="heartbeat interval (capped at a third of the lease)", default=5.0, gt=0.05
    )
    result_ttl_seconds: int = Field(
        description="how long finished tasks and their results are kept", default=86_400, gt=0
    )
    max_payload_bytes: int = Field(
        description="largest serialized args + kwargs accepted at enqueue", default=1_048_576, gt=0
    )
    # A task's result is held in Redis for its TTL and served whole by the API: bounded like args, yet
    # larger, since results are often bigger than the arguments that asked for them. A larger result
    # ends the attempt FAILED (ResultTooLarge), never stored. See docs/guarantees.md.
    max_result_bytes: int = Field(
        description="largest serialized task result stored; a larger one ends the attempt FAILED "
        "(ResultTooLarge)",
        default=4 * 1_048_576,
        gt=0,
    )
    # Only results up to this size travel in the event stream (the recorder's copy); a larger one stays in
    # the task hash for its TTL and the durable record notes its size (one bounded stream entry per task).
    max_event_result_bytes: int = Field(
        description="largest result copied into the event stream and the durable record (larger: size only)",
        default=65_536,
        ge=0,
    )
    max_error_chars: int = Field(
        description="error text of an attempt is cut to this many characters", default=10_000, gt=0
    )
    max_traceback_chars: int = Field(
        description="traceback of an attempt is cut to this many characters", default=20_000, gt=0
    )
    max_lost_leases: int = Field(
        description="lost leases after which a task is dead-lettered as poison "
        "(a queue's own max_lost_leases wins)",
        default=3,
        ge=0,
    )
    events_max_length: int = Field(
        description="approximate cap of each queue's event stream", default=100_000, gt=0
    )
    retry_history_max: int = Field(description="failed attempts kept on a task", default=50, gt=0)
    # Multiplies every retry delay; tests set 0 (the pytest plugin does) so a retried task runs again at
    # once instead of making the test suite wait out real backoff.
    backoff_scale: float = Field(
        description="factor applied to every retry delay; the pytest plugin sets 0 so retries run at once "
        "(docs/testing.md)",
        default=1.0,
        ge=0,
        le=1000,
    )
    # The product's defaults for a task that sets neither (and whose queue sets no retry default): up to
    # 3 retries with exponential backoff, and a 300 s hard time limit. 0 = no retry / no limit. Applied by
    # the worker (the fail script and the lease), so they follow the worker's configuration.
    default_max_retries: int = Field(
        description="retries of a task that sets no max_retries and whose queue sets no retry default "
        "(0 = none)",
        default=3,
        ge=0,
        le=1000,
    )
    default_timeout: float = Field(
        description="hard time limit in seconds of a task enqueued without a timeout (0 = none)",
        default=300.0,
        ge=0,
        le=86_400 * 30,
    )
    # A schedule that fires every second is allowed by default (the product has seconds-precision cron);
    # a deployment that shares Redis with untrusted schedule authors raises this floor.
    min_schedule_interval_seconds: float = Field(
        description="shortest time between two fires of a cron schedule accepted at registration (0 = any)",
        default=1.0,
        ge=0,
        le=86_400,
    )
    # Unset, redis-py's pool opens a connection whenever every open one is busy; a Redis shared by many pods
    # (maxclients, a managed service's connection quota) wants a cap per process. A worker holds about four
    # at once (fetch, ack, heartbeat, cancel listener) plus one per thread enqueueing from tasks; its idle
    # wait has a connection of its own. Callers past the cap wait for a free connection.
    redis_max_connections: int | None = Field(
        description="most Redis connections each client of a process opens (a worker, the API, the "
        "scheduler, the recorder and producers each have one or two clients); callers wait for a free "
        "one up to the socket timeout (unset: redis-py's default pool: no cap before redis-py 8, 100 "
        "from 8 on, past which a command fails instead of waiting)",
        default=None,
        ge=4,
        le=100_000,
    )
    promote_batch: int = Field(description="delayed tasks promoted per fetch call", default=500, gt=0)
    socket_timeout_seconds: float = Field(description="Redis socket timeout", default=10.0, gt=0)
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL of the durable record, for the recorder, migrate and the API (secret)",
    )
    # In Kubernetes the worker id is the pod name (downward API), so the operator can match heartbeats
    # to pods.
    pod_name: str | None = Field(
        description="worker id: in Kubernetes the pod name (downward API); else host-pid-random "
        "(with --processes N, each process adds _0 .. _N-1)",
        default=None,
        validation_alias=AliasChoices("POD_NAME", "JOBQUEUE_POD_NAME"),
    )
    health_dir: str | None = Field(
        description="where each worker process touches its liveness file for `jobqueue worker-health` "
        "(unset: no file)",
        default=None,
    )
    # Arguments and results are the application's data (personal data, secrets): a worker's log lines
    # never carry them unless this is set, and then cut short, so one huge argument cannot flood a log.
    log_task_payload_chars: int = Field(
        description="include each task's args, kwargs and result in the worker's task log lines, cut to "
        "this many characters (0: never)",
        default=0,
        ge=0,
        le=100_000,
    )
    # The one per-task line at INFO is what operators read at low rates, and the largest single per-task
    # cost of a fast pool (~18% of the asyncio pool's no-op time, docs/benchmarks.md); at DEBUG it is
    # gated like the received and started lines, while failure, retry, cancel and dead-letter lines stay.
    log_task_success_level: Literal["INFO", "DEBUG"] = Field(
        description="level of the worker's per-task `succeeded` line: INFO, or DEBUG to leave it out "
        "of the default log (failed, retried, cancelled and dead-lettered lines keep their levels)",
        default="INFO",
    )
    # A leaking task grows its child process for ever; replacing the child after a bounded number of tasks
    # or once its resident memory passed a limit is the standard cure. Only the process pool has children.
    max_tasks_per_child: int | None = Field(
        description="process pool: replace a child process after it ran this many tasks, between two "
        "tasks (unset: never)",
        default=None,
        ge=1,
    )
    max_memory_per_child_mb: int | None = Field(
        description="process pool (Linux): replace a child process after a task that left its resident "
        "memory above this many MiB (unset: never)",
        default=None,
        ge=1,
    )

    # A task reporting progress in a tight loop must not become a flood of Redis writes.
    progress_interval_seconds: float = Field(
        description="at most one progress write per running task per this many seconds (ctx.set_progress; "
        "the last value is always written before the outcome)",
        default=0.5,
        ge=0,
        le=3600,
    )

    @property
    def effective_default_timeout(self) -> float | None:
        """The hard time limit of a task enqueued without one; None when default_timeout is 0."""
        return self.default_timeout or None

    @property
    def effective_heartbeat_seconds(self) -> float:
        """Heartbeat interval, never more than a third of the lease so two misses still keep it."""
        return min(self.heartbeat_seconds, self.lease_seconds / 3)


class ApiClientSettings(EnvFileSettings):
    """Where the CLI finds the REST API: ``JOBQUEUE_API_URL`` and ``JOBQUEUE_API_KEY`` (one key, as
    opposed to the server's ``JOBQUEUE_API_KEYS`` list)."""

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_API_", extra="ignore")

    url: str | None = Field(
        default=None,
        description="where the CLI reaches the REST API (submit, cancel, queues, status --history)",
    )
    key: SecretStr | None = Field(default=None, description="the API key the CLI sends (secret)")
