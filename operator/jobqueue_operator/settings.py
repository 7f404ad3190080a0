"""Operator settings from ``JOBQUEUE_OPERATOR_*`` environment variables (the Redis connection comes from
the core's own ``JOBQUEUE_*`` settings: JOBQUEUE_REDIS_URL, JOBQUEUE_KEY_PREFIX)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jobqueue.settings import EnvFileSettings, SettingsConfigDict
from jobqueue_operator.pod_policy import PodPolicy


class OperatorSettings(EnvFileSettings):
    """How the operator runs. Build once in the entry point and pass it down."""

    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_OPERATOR_", extra="ignore")

    # Empty with all_namespaces False means the operator's own namespace is not guessed: one must be named.
    namespaces: list[str] = Field(
        description="namespaces to watch (JSON list); empty needs all_namespaces", default_factory=list
    )
    all_namespaces: bool = Field(default=False, description="watch every namespace")
    # Seconds between reconciles of each resource's live state (autoscaler, health, status).
    interval_seconds: float = Field(
        description="seconds between reconciles of each resource's live state", default=5.0, gt=0
    )
    # Seconds to wait before retrying when Redis or the API server is unreachable.
    retry_delay_seconds: float = Field(
        description="seconds before retrying when Redis or the API server is unreachable", default=5.0, gt=0
    )
    metrics_host: str = Field(
        default="0.0.0.0",  # noqa: S104 (scraped from inside the cluster)
        description="address of the Prometheus metrics endpoint",
    )
    metrics_port: int = Field(
        description="port of the Prometheus metrics endpoint", default=9108, ge=0, le=65535
    )
    liveness_endpoint: str = Field(
        default="http://0.0.0.0:8080/healthz", description="kopf liveness probe endpoint"
    )
    # kopf peering (several replicas, one active; docs/operator.md "High availability"): the name of the
    # KopfPeering object (ClusterKopfPeering with all_namespaces). None: standalone, one replica only.
    peering: str | None = Field(
        description="name of the KopfPeering object for several replicas, one active; unset = standalone",
        default=None,
        min_length=1,
        max_length=253,
    )
    # Seconds a replica's keep-alive counts: how long a SIGKILLed leader blocks the others at most.
    peering_lifetime_seconds: int = Field(
        description="seconds a replica's keep-alive counts", default=30, ge=2, le=3600
    )
    # None: derived from the start time, so the oldest replica leads (jobqueue_operator.peering).
    priority: int | None = Field(
        default=None,
        description="peering priority; unset = derived from the start time (the oldest replica leads)",
    )
    # What a WorkerPool's podTemplate may have beyond Pod Security "restricted" (jobqueue_operator.pod_policy;
    # the chart's workerPoolPolicy values). Lists are JSON in the environment.
    pod_allow_host_namespaces: bool = Field(
        default=False, description="WorkerPool pods may use host network / PID / IPC and host ports"
    )
    pod_allow_host_path: bool = Field(default=False, description="WorkerPool pods may mount hostPath volumes")
    pod_allow_privileged: bool = Field(
        default=False, description="WorkerPool pods may be privileged, add capabilities or escalate"
    )
    pod_allow_root: bool = Field(default=False, description="WorkerPool pods may run as uid 0")
    pod_service_accounts: list[str] = Field(
        default_factory=list, description="service accounts a WorkerPool pod may name (JSON list)"
    )
    pod_secrets: list[str] = Field(
        default_factory=lambda: ["jobqueue-connection"],
        description="Secrets a WorkerPool pod or connectionSecretName may reference (JSON list)",
    )
    # The --log-format of the worker containers the operator runs (the chart sets json). auto adds no
    # argument, so the pod template of an operator without the setting is unchanged (no rollout).
    worker_log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="log format of WorkerPool workers: auto (JSON unless a terminal), json or text",
    )

    # An external Redis whose URL carries no password (the chart's redis.external): every worker reads
    # JOBQUEUE_REDIS_PASSWORD from this Secret, as the chart's own pods do; empty: the URL has it all.
    worker_redis_password_secret_name: str = Field(
        default="",
        description="Secret every WorkerPool worker reads JOBQUEUE_REDIS_PASSWORD from (empty: none)",
        max_length=253,
    )
    worker_redis_password_secret_key: str = Field(
        default="password",
        description="key of that Secret holding the Redis password",
        min_length=1,
        max_length=253,
    )

    def worker_redis_password(self) -> tuple[str, str] | None:
        """(Secret name, key) of the workers' Redis password, or None."""
        if not self.worker_redis_password_secret_name:
            return None
        return (self.worker_redis_password_secret_name, self.worker_redis_password_secret_key)

    def pod_policy(self) -> PodPolicy:
        """The WorkerPool pod policy these settings describe."""
        return PodPolicy(
            allow_host_namespaces=self.pod_allow_host_namespaces,
            allow_host_path=self.pod_allow_host_path,
            allow_privileged=self.pod_allow_privileged,
            allow_root=self.pod_allow_root,
            service_accounts=frozenset(self.pod_service_accounts),
            secrets=frozenset(self.pod_secrets),
        )
