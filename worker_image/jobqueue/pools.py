"""The worker pool model shared by every way pools are managed (REST API, CLI, local supervisor, operator):
a pool's spec, its autoscaling settings, their validation, and the rule for manual scaling while
autoscaling is on. Pure: no I/O; the broker stores specs, the services run them.

Manual scaling while autoscaling is on turns autoscaling off (the pool then holds exactly the replicas
asked for), on every backend: a person who scales by hand means it, and a 409 would make every manual
scale two calls. docs/api.md says so.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jobqueue.errors import ValidationError
from jobqueue.keys import validate_queue_name

# A Kubernetes DNS label (RFC 1123), so one name works as a WorkerPool resource name and a local pool.
POOL_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
MAX_REPLICAS = 1000
MAX_CONCURRENCY = 1024
MAX_QUEUES = 32
MAX_TARGET_PER_REPLICA = 1_000_000


def validate_pool_name(name: object) -> str:
    """``name`` if it is a DNS label (lower-case letters, digits, '-', 1-63), else ValidationError('name')."""
    if not isinstance(name, str) or not POOL_NAME.fullmatch(name):
        raise ValidationError(
            "name",
            "must be 1-63 lower-case letters, digits or '-', starting and ending with one of the first",
        )
    return name


def validate_pool_queues(queues: Sequence[object]) -> tuple[str, ...]:
    """1 to MAX_QUEUES distinct valid queue names; ValidationError naming ``queues`` or ``queues.<i>``."""
    if not 1 <= len(queues) <= MAX_QUEUES:
        raise ValidationError("queues", f"must list 1 to {MAX_QUEUES} queue names")
    for i, queue in enumerate(queues):
        try:
            validate_queue_name(queue)  # type: ignore[arg-type]  # it checks the type too
        except ValidationError as exc:
            raise ValidationError(f"queues.{i}", exc.message) from exc
    if len(set(queues)) != len(queues):
        raise ValidationError("queues", "must not repeat a queue")
    return tuple(str(q) for q in queues)


def _int(value: object, path: str, low: int, high: int) -> int:
    # bool is an int in Python: True as "1 replica" would hide a client bug.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(path, "must be an integer")
    if not low <= value <= high:
        raise ValidationError(path, f"must be between {low} and {high}")
    return value


@dataclass(frozen=True)
class PoolAutoscaling:
    """Autoscaling of a pool from the depth of its queues (the policy of jobqueue.scaling)."""

    enabled: bool = False
    min_replicas: int = 1
    max_replicas: int = 10
    target_tasks_per_replica: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValidationError("autoscaling.enabled", "must be true or false")
        _int(self.min_replicas, "autoscaling.min_replicas", 0, MAX_REPLICAS)
        _int(self.max_replicas, "autoscaling.max_replicas", 1, MAX_REPLICAS)
        _int(self.target_tasks_per_replica, "autoscaling.target_tasks_per_replica", 1, MAX_TARGET_PER_REPLICA)
        if self.min_replicas > self.max_replicas:
            raise ValidationError("autoscaling.min_replicas", "must be <= autoscaling.max_replicas")


@dataclass(frozen=True)
class PoolSpec:
    """What a pool should be. ``generation`` counts changes; ``uid`` tells a re-created pool of the same
    name from the one being drained."""

    name: str
    queues: tuple[str, ...]
    concurrency: int = 4
    replicas: int = 1
    autoscaling: PoolAutoscaling = field(default_factory=PoolAutoscaling)
    generation: int = 1
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        validate_pool_name(self.name)
        if not isinstance(self.queues, tuple):
            raise ValidationError("queues", "must be a list of queue names")
        validate_pool_queues(self.queues)
        _int(self.concurrency, "concurrency", 1, MAX_CONCURRENCY)
        _int(self.replicas, "replicas", 0, MAX_REPLICAS)
        _int(self.generation, "generation", 1, 2**53)
        if not isinstance(self.autoscaling, PoolAutoscaling):
            raise ValidationError("autoscaling", "must be an object")

    def desired_replicas_when_fixed(self) -> int | None:
        """Replicas to hold when autoscaling is off; None when the autoscaler decides."""
        return None if self.autoscaling.enabled else self.replicas

    def scaled(self, replicas: int) -> PoolSpec:
        """The spec after a manual scale: exactly ``replicas``, autoscaling off (the rule above)."""
        off = replace(self.autoscaling, enabled=False)
        return replace(self, replicas=replicas, autoscaling=off, generation=self.generation + 1)

    def changed(self, **changes: Any) -> PoolSpec:
        """The spec with ``changes`` applied and validated, one generation later."""
        return replace(self, **changes, generation=self.generation + 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the broker stores and the API shows)."""
        return {
            "name": self.name,
            "queues": list(self.queues),
            "concurrency": self.concurrency,
            "replicas": self.replicas,
            "autoscaling": {
                "enabled": self.autoscaling.enabled,
                "min_replicas": self.autoscaling.min_replicas,
                "max_replicas": self.autoscaling.max_replicas,
                "target_tasks_per_replica": self.autoscaling.target_tasks_per_replica,
            },
            "generation": self.generation,
            "uid": self.uid,
        }

    def to_json(self) -> str:
        """Canonical JSON of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


def autoscaling_from(data: Mapping[str, Any] | None) -> PoolAutoscaling:
    """PoolAutoscaling from a mapping (unknown keys refused); ValidationError naming the field."""
    if data is None:
        return PoolAutoscaling()
    if not isinstance(data, Mapping):
        raise ValidationError("autoscaling", "must be an object")
    unknown = set(data) - {"enabled", "min_replicas", "max_replicas", "target_tasks_per_replica"}
    if unknown:
        raise ValidationError(f"autoscaling.{sorted(unknown)[0]}", "unknown field")
    return PoolAutoscaling(**data)


def spec_from_dict(data: Mapping[str, Any]) -> PoolSpec:
    """PoolSpec from its :meth:`PoolSpec.to_dict` form; ValidationError naming the field."""
    if not isinstance(data, Mapping):
        raise ValidationError("pool", "must be an object")
    queues = data.get("queues")
    if not isinstance(queues, list | tuple):
        raise ValidationError("queues", "must be a list of queue names")
    extra = {k: data[k] for k in ("generation", "uid") if k in data}
    return PoolSpec(
        name=data.get("name"),  # type: ignore[arg-type]  # validated by PoolSpec
        queues=tuple(queues),
        concurrency=data.get("concurrency", 4),
        replicas=data.get("replicas", 1),
        autoscaling=autoscaling_from(data.get("autoscaling")),
        **extra,
    )


def spec_from_json(text: str) -> PoolSpec:
    """PoolSpec from stored JSON; ValidationError('pool') when it is not a pool spec at all."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationError("pool", f"unreadable pool spec: {exc}") from exc
    return spec_from_dict(data)


@dataclass(frozen=True)
class PoolEvent:
    """One entry of a pool's history (created, scaled, drained, worker replaced, ...)."""

    at: float  # UNIX seconds
    kind: str  # CamelCase, like a Kubernetes event reason: Created, ScaledUp, Draining, ...
    message: str

    def to_json(self) -> str:
        """JSON form as stored."""
        return json.dumps({"at": self.at, "kind": self.kind, "message": self.message})

    @classmethod
    def from_json(cls, text: str) -> PoolEvent:
        """Parse a stored event; an unreadable one becomes an 'Unreadable' event rather than an error."""
        try:
            data = json.loads(text)
            return cls(float(data["at"]), str(data["kind"]), str(data["message"]))
        except (ValueError, KeyError, TypeError):
            return cls(0.0, "Unreadable", "an event that could not be read")
