"""Typed views of the WorkerPool spec, mirroring crds/jobqueue.dev_workerpools.yaml.

The API server has already validated and defaulted what the operator receives; the defaults here repeat
the CRD's so a spec read from an older object (before a default was added) behaves the same.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from jobqueue.keys import validate_queue_name

# The broker's queue name rule, applied again here: the CRD states it too (a test compares the two), but an
# object stored before the CRD said so, or a CRD not yet upgraded, must be refused by the operator rather
# than written to Redis.
QueueName = Annotated[str, AfterValidator(validate_queue_name)]

# Backoff spellings of earlier CRD releases (Kubernetes enum style), still accepted; the core's names
# (jobqueue.retry.BACKOFF_NAMES, which tests/unit/crds/test_names_rule.py holds this Literal to) are the
# ones to write.
LEGACY_BACKOFF_NAMES = {"Exponential": "exponential", "Linear": "linear", "Fixed": "constant"}
BackoffName = Literal["exponential", "linear", "fibonacci", "constant", "Exponential", "Linear", "Fixed"]


class _CamelModel(BaseModel):
    # Kubernetes objects are camelCase; Python attributes stay snake_case.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


class Autoscaling(_CamelModel):
    """spec.autoscaling: the built-in autoscaler's bounds and pacing."""

    enabled: bool = False
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=10, ge=1)
    target_tasks_per_replica: int = Field(default=10, ge=1)
    activation_depth: int = Field(default=0, ge=0)
    scale_up_cooldown_seconds: int = Field(default=30, ge=0)
    scale_down_cooldown_seconds: int = Field(default=300, ge=0)
    max_step: int = Field(default=4, ge=1)


class Health(_CamelModel):
    """spec.health: when a worker counts as stale and when its leases count as orphaned."""

    heartbeat_stale_seconds: int = Field(default=60, ge=1)
    lease_orphan_seconds: int = Field(default=120, ge=1)


class PodTemplateMetadata(_CamelModel):
    """Extra labels and annotations for the worker pods."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class PodTemplateOverrides(_CamelModel):
    """spec.podTemplate: merged into the generated pod template."""

    metadata: PodTemplateMetadata = Field(default_factory=PodTemplateMetadata)
    spec: dict[str, Any] = Field(default_factory=dict)


class Resources(_CamelModel):
    """A container's resource requests and limits (quantities kept as Kubernetes strings)."""

    requests: dict[str, str | int] = Field(default_factory=dict)
    limits: dict[str, str | int] = Field(default_factory=dict)


class DisruptionBudget(_CamelModel):
    """spec.disruptionBudget: the pool's PodDisruptionBudget (exactly one of the two, as the CRD checks)."""

    min_available: int | str | None = None
    max_unavailable: int | str | None = None


class WorkerPoolSpec(_CamelModel):
    """spec of a WorkerPool."""

    queues: tuple[QueueName, ...] = Field(min_length=1)
    image: str = Field(min_length=1)
    app: str = Field(min_length=1)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    concurrency: int = Field(default=4, ge=1)
    processes: int = Field(default=1, ge=1, le=64)  # worker processes per pod (`jobqueue worker --processes`)
    pool_kind: Literal["process", "thread", "async"] = "process"
    connection_secret_name: str = "jobqueue-connection"  # noqa: S105 (a Secret's name, not a secret)
    resources: Resources = Field(default_factory=Resources)
    env: tuple[dict[str, Any], ...] = ()
    pod_template: PodTemplateOverrides = Field(default_factory=PodTemplateOverrides)
    termination_grace_period_seconds: int = Field(default=60, ge=1)
    replicas: int = Field(default=1, ge=0)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    health: Health = Field(default_factory=Health)
    disruption_budget: DisruptionBudget | None = None


# -- JobQueue -------------------------------------------------------------------------------------------


class PriorityWeights(_CamelModel):
    """spec.priority.weights: relative shares under the Weighted policy."""

    high: int = Field(ge=1)
    medium: int = Field(ge=1)
    low: int = Field(ge=1)


class PrioritySpec(_CamelModel):
    """spec.priority of a JobQueue."""

    policy: Literal["Strict", "Weighted"] = "Strict"
    weights: PriorityWeights | None = None


class RateLimitSpec(_CamelModel):
    """spec.rateLimit: at most ``tasks`` starts per ``period_seconds`` with ``burst`` back to back."""

    tasks: int = Field(ge=1)
    period_seconds: int = Field(default=1, ge=1)
    burst: int = Field(default=1, ge=1)


class PriorityRateLimits(_CamelModel):
    """spec.priorityRateLimits: a level's own limit, beside the queue's (absent: the level has none)."""

    high: RateLimitSpec | None = None
    medium: RateLimitSpec | None = None
    low: RateLimitSpec | None = None


class Backoff(_CamelModel):
    """spec.retries.backoff."""

    strategy: BackoffName = "exponential"
    initial_seconds: float = 1.0
    max_seconds: float = 300.0
    jitter: bool = True

    @property
    def policy_name(self) -> str:
        """The core's name of the strategy (``Fixed`` is ``constant``)."""
        return LEGACY_BACKOFF_NAMES.get(self.strategy, self.strategy)

    @property
    def deprecated_spelling(self) -> bool:
        """Whether the spec uses an earlier release's spelling (worth a warning event, not a refusal)."""
        return self.strategy in LEGACY_BACKOFF_NAMES


class RetriesSpec(_CamelModel):
    """spec.retries: defaults for tasks that set no retry policy of their own."""

    max_retries: int = Field(default=3, ge=0, le=1000)
    backoff: Backoff = Field(default_factory=Backoff)


class DeadLetterSpec(_CamelModel):
    """spec.deadLetter."""

    max_lost_leases: int = Field(default=3, ge=0)
    alert_threshold: int | None = Field(default=None, ge=1)


class JobQueueSpec(_CamelModel):
    """spec of a JobQueue (the queue's name is ``queue_name`` if set, else metadata.name)."""

    queue_name: QueueName | None = None
    paused: bool = False
    priority: PrioritySpec = Field(default_factory=PrioritySpec)
    rate_limit: RateLimitSpec | None = None
    priority_rate_limits: PriorityRateLimits = Field(default_factory=PriorityRateLimits)
    max_in_flight: int = Field(default=0, ge=0)
    retries: RetriesSpec = Field(default_factory=RetriesSpec)
    dead_letter: DeadLetterSpec = Field(default_factory=DeadLetterSpec)


# -- RecurringTask --------------------------------------------------------------------------------------


class RecurringTaskSpec(_CamelModel):
    """spec of a RecurringTask."""

    schedule: str = Field(min_length=1)
    time_zone: str = "UTC"
    task: str = Field(min_length=1)
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: QueueName = "default"
    priority: Literal["high", "medium", "low"] = "medium"
    suspend: bool = False
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    starting_deadline_seconds: int | None = Field(default=None, ge=0)


def configured_queue(spec: JobQueueSpec, name: str) -> str:
    """The queue a JobQueue named ``name`` configures; ValidationError('queue') when it breaks the rule."""
    return spec.queue_name or validate_queue_name(name)
