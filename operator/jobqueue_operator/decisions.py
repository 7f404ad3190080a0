"""The operator's pure decisions. They live in the core (jobqueue.scaling) because the local supervisor
of ``jobqueue up`` applies the very same policy; this module names them for the operator's handlers."""

from jobqueue.scaling import (
    DRAINED_POD_DELETION_COST,
    POD_DELETION_COST_ANNOTATION,
    Cooldowns,
    ScaleDecision,
    ScaleReason,
    Worker,
    choose_workers_to_drain,
    deletion_cost_annotations,
    desired_replicas,
    drained_workers,
    orphaned_workers,
    silent_workers,
    stale_workers,
)

__all__ = [
    "DRAINED_POD_DELETION_COST",
    "POD_DELETION_COST_ANNOTATION",
    "Cooldowns",
    "ScaleDecision",
    "ScaleReason",
    "Worker",
    "choose_workers_to_drain",
    "deletion_cost_annotations",
    "desired_replicas",
    "drained_workers",
    "orphaned_workers",
    "silent_workers",
    "stale_workers",
]
