"""RecurringTask handlers: a schedule in Redis (fired by ``jobqueue scheduler``), paused while suspended,
removed with the resource (a finalizer, because the Redis state must go), status from its run state."""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf
import pydantic

from jobqueue.errors import ScheduleNotFound, ValidationError
from jobqueue.schedules.model import ScheduleInfo
from jobqueue.schedules.registry import ScheduleRegistry
from jobqueue_operator.conditions import flag, merge_conditions, ready, rfc3339
from jobqueue_operator.context import GROUP, VERSION, OperatorContext, namespace_of, reconciling
from jobqueue_operator.queue_status import invalid_status
from jobqueue_operator.spec import RecurringTaskSpec

KIND, PLURAL = "RecurringTask", "recurringtasks"


def schedule_name(namespace: str, name: str) -> str:
    """The schedule's name in Redis: namespaced, since one Redis may serve several namespaces."""
    return f"{namespace}.{name}"


def schedule_status(info: ScheduleInfo) -> dict[str, Any]:
    """lastScheduleTime, nextScheduleTime and lastTaskId from the schedule's run state."""
    status: dict[str, Any] = {}
    if info.last_fire_at is not None:
        status["lastScheduleTime"] = rfc3339(info.last_fire_at)
    if info.next_fire_at is not None:
        status["nextScheduleTime"] = rfc3339(info.next_fire_at)
    if info.last_task_id:
        status["lastTaskId"] = info.last_task_id
    return status


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def register_recurring(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """Register the RecurringTask handlers on ``registry``."""

    def schedules() -> ScheduleRegistry:
        return ScheduleRegistry(ctx.client)

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="register-schedule", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="register-schedule", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", id="register-schedule", registry=registry)
    def register_schedule(
        *,
        name: str,
        namespace: str | None,
        spec: Any,
        body: Any,
        meta: Any,
        status: Any,
        patch: Any,
        **_: Any,
    ) -> None:
        generation = int(meta.get("generation") or 0)
        with reconciling(ctx, KIND, "register"):
            try:
                parsed = RecurringTaskSpec.model_validate(dict(spec))
                info = schedules().register(
                    schedule_name(namespace_of(namespace), name),
                    cron=parsed.schedule,
                    task=parsed.task,
                    timezone=parsed.time_zone,
                    args=list(parsed.args),
                    kwargs=parsed.kwargs,
                    queue=parsed.queue,
                    priority=parsed.priority,
                    concurrency_policy=parsed.concurrency_policy,
                    starting_deadline_seconds=parsed.starting_deadline_seconds,
                    paused=parsed.suspend,
                )
            except (ValidationError, pydantic.ValidationError) as exc:
                patch.status.update(invalid_status(status.get("conditions"), generation, _now(), str(exc)))
                kopf.warn(body, reason="InvalidSpec", message=str(exc))
                raise
            conditions = [
                ready(True, "Scheduled", f"schedule {info.schedule.name!r} registered"),
                flag("Suspended", parsed.suspend, "SuspendedBySpec" if parsed.suspend else "Active"),
            ]
            patch.status.update(
                {
                    **schedule_status(info),
                    "observedGeneration": generation,
                    "conditions": merge_conditions(status.get("conditions"), conditions, generation, _now()),
                }
            )
            if parsed.suspend:
                # A suspended schedule has no next fire; drop a stale one from status.
                patch.status["nextScheduleTime"] = None
            verb = "suspended" if parsed.suspend else "registered"
            kopf.info(body, reason="Scheduled", message=f"schedule {parsed.schedule!r} {verb}")

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="remove-schedule", registry=registry)
    def remove_schedule(*, name: str, namespace: str | None, body: Any, **_: Any) -> None:
        with reconciling(ctx, KIND, "delete"):
            try:
                schedules().delete(schedule_name(namespace_of(namespace), name))
            except ScheduleNotFound:
                return  # never registered (an invalid spec) or already removed
            kopf.info(body, reason="Unscheduled", message="schedule removed from Redis")

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=ctx.settings.interval_seconds,
        backoff=ctx.settings.retry_delay_seconds,  # after an unexpected exception (kopf: 60 s)
        id="refresh-schedule-status",
        registry=registry,
    )
    def refresh_schedule_status(
        *, name: str, namespace: str | None, status: Any, patch: Any, **_: Any
    ) -> None:
        with reconciling(ctx, KIND, "status"):
            try:
                info = schedules().get(schedule_name(namespace_of(namespace), name))
            except ScheduleNotFound:
                return  # not registered yet, or its spec is invalid (the condition says so)
            fresh = schedule_status(info)
            if any(status.get(key) != value for key, value in fresh.items()):
                patch.status.update(fresh)
