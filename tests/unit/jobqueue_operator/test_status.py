"""Conditions keep their transition time while unchanged; errors map to kopf's retry semantics."""

from __future__ import annotations

import datetime as dt

import kopf
import pytest

from jobqueue.errors import BrokerUnavailable, ValidationError
from jobqueue.flow_control import make_retry_defaults
from jobqueue_operator.conditions import Condition, merge_conditions
from jobqueue_operator.context import OperatorContext, reconciling
from jobqueue_operator.metrics import PoolReplicas, PoolReplicasCollector, build_metrics
from jobqueue_operator.queue_status import retry_defaults_of
from jobqueue_operator.settings import OperatorSettings
from jobqueue_operator.spec import JobQueueSpec

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)


def test_transition_time_moves_only_when_status_changes() -> None:
    first = merge_conditions(None, [Condition("Ready", "True", "Configured")], 1, T0)
    same = merge_conditions(first, [Condition("Ready", "True", "Configured", "again")], 2, T1)
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert (same[0]["observedGeneration"], same[0]["message"]) == (2, "again")
    flipped = merge_conditions(same, [Condition("Ready", "False", "InvalidSpec")], 3, T1)
    assert flipped[0]["lastTransitionTime"] == "2026-01-01T00:05:00Z"


def test_other_conditions_are_kept() -> None:
    both = merge_conditions(
        merge_conditions(None, [Condition("Paused", "True", "PausedBySpec")], 1, T0),
        [Condition("Ready", "True", "Configured")],
        1,
        T1,
    )
    assert [c["type"] for c in both] == ["Paused", "Ready"]


def context() -> OperatorContext:
    # Only settings and metrics are used by reconciling(); no connection is opened.
    return OperatorContext(
        settings=OperatorSettings(retry_delay_seconds=3),
        client=None,  # type: ignore[arg-type]
        kube=None,  # type: ignore[arg-type]
        metrics=build_metrics(),
    )


def test_redis_unreachable_is_a_temporary_error_with_the_retry_delay() -> None:
    ctx = context()
    with pytest.raises(kopf.TemporaryError) as caught, reconciling(ctx, "WorkerPool", "reconcile"):
        raise BrokerUnavailable("connection refused")
    assert caught.value.delay == 3
    assert (
        ctx.metrics.reconcile_errors.labels("WorkerPool", "reconcile", "BrokerUnavailable")._value.get() == 1
    )
    assert outcomes(ctx, "WorkerPool") == {"ok": 0, "retry": 1, "error": 0}


def test_an_invalid_spec_is_a_permanent_error() -> None:
    with pytest.raises(kopf.PermanentError, match="unknown time zone"), reconciling(context(), "X", "y"):
        raise ValidationError("timezone", "unknown time zone")


def outcomes(ctx: OperatorContext, kind: str) -> dict[str, float]:
    return {o: ctx.metrics.reconciliations.labels(kind, o)._value.get() for o in ("ok", "retry", "error")}


def test_every_reconcile_is_counted_by_outcome_and_timed() -> None:
    ctx = context()
    with reconciling(ctx, "JobQueue", "configure"):
        pass
    with pytest.raises(kopf.PermanentError), reconciling(ctx, "JobQueue", "configure"):
        raise ValidationError("rateLimit", "bad")
    with pytest.raises(RuntimeError), reconciling(ctx, "JobQueue", "configure"):
        raise RuntimeError("a bug")
    with pytest.raises(kopf.TemporaryError), reconciling(ctx, "JobQueue", "status"):
        raise kopf.TemporaryError("later")
    assert outcomes(ctx, "JobQueue") == {"ok": 1, "retry": 1, "error": 2}
    count = ctx.metrics.registry.get_sample_value(
        "jobqueue_operator_reconcile_duration_seconds_count", {"kind": "JobQueue"}
    )
    assert count == 4


def test_pool_replica_gauges_expire_and_have_bounds_only_under_autoscaling() -> None:
    now = [0.0]
    pools = PoolReplicasCollector(expire_seconds=60, clock=lambda: now[0])
    pools.set("ns", "auto", PoolReplicas(desired=3, current=2, ready=1, min=1, max=5))
    pools.set("ns", "manual", PoolReplicas(desired=2, current=2, ready=2, min=None, max=None))
    samples = {(s.name, s.labels["pool"]): s.value for f in pools.collect() for s in f.samples}
    assert samples[("jobqueue_workerpool_replicas_desired", "auto")] == 3
    assert samples[("jobqueue_workerpool_replicas_max", "auto")] == 5
    assert ("jobqueue_workerpool_replicas_max", "manual") not in samples
    now[0] = 30.0
    pools.set("ns", "manual", PoolReplicas(desired=1, current=1, ready=1, min=None, max=None))
    now[0] = 61.0  # "auto" not reconciled for over a minute: deleted, or another replica's now
    assert {s.labels["pool"] for f in pools.collect() for s in f.samples} == {"manual"}


@pytest.mark.parametrize(
    ("strategy", "core"), [("Exponential", "exponential"), ("Linear", "linear"), ("Fixed", "constant")]
)
def test_spec_retries_map_to_the_core_s_retry_defaults(strategy: str, core: str) -> None:
    spec = JobQueueSpec.model_validate(
        {"retries": {"maxRetries": 7, "backoff": {"strategy": strategy, "initialSeconds": 2, "maxSeconds": 90,
                                                  "jitter": False}}}
    )  # fmt: skip
    assert retry_defaults_of(spec) == {
        "max_retries": 7, "backoff": core, "base_seconds": 2.0, "max_seconds": 90.0, "jitter": False
    }  # fmt: skip
    # Every strategy the CRD allows is one the core knows (make_retry_defaults would raise otherwise).
    make_retry_defaults(**retry_defaults_of(spec))


def test_the_crd_defaults_give_three_exponential_retries() -> None:
    assert retry_defaults_of(JobQueueSpec()) == {
        "max_retries": 3, "backoff": "exponential", "base_seconds": 1.0, "max_seconds": 300.0, "jitter": True
    }  # fmt: skip
