"""The status of a WorkerPool after one reconcile (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from jobqueue_operator.conditions import Condition, flag, merge_conditions, ready, rfc3339
from jobqueue_operator.pool_plan import PoolLoad, PoolPlan


def parse_time(value: str | None) -> float | None:
    """UNIX seconds of an RFC 3339 timestamp from status, or None."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pool_status(
    *,
    plan: PoolPlan,
    load: PoolLoad,
    replicas: int,
    ready_replicas: int,
    selector: str,
    last_scale_time: str | None,
    conditions: Sequence[Mapping[str, Any]] | None,
    generation: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """Replica counts, load, scaling and health conditions as the CRD's status declares them."""
    decision = plan.decision
    wanted = decision.replicas if decision else plan.replicas
    scaling = Condition(
        "Scaling",
        "True" if decision and decision.target != plan.current else "False",
        decision.reason.value if decision else "AutoscalingDisabled",
        f"load asks for {decision.target} replica(s), {plan.current} now" if decision else "",
    )
    updates = [
        ready(
            ready_replicas >= min(plan.replicas, 1),
            "WorkersReady" if ready_replicas >= min(plan.replicas, 1) else "WaitingForWorkers",
            f"{ready_replicas}/{replicas} worker pod(s) ready",
        ),
        scaling,
        flag(
            "Draining",
            bool(plan.draining),
            "DrainingIdleWorkers" if plan.draining else "NoDrain",
            ", ".join(plan.draining),
        ),
        flag(
            "Degraded",
            bool(plan.stale),
            "StaleHeartbeats" if plan.stale else "Healthy",
            ", ".join(plan.stale),
        ),
    ]
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": ready_replicas,
        "desiredReplicas": wanted,
        "selector": selector,
        "lastScaleTime": rfc3339(now) if plan.scaled else last_scale_time,
        "queueDepth": load.ready,
        "inFlight": load.in_flight,
        "staleWorkers": len(plan.stale),
        "conditions": merge_conditions(conditions, updates, generation, now),
    }
