"""JobQueue handlers: write the queue's configuration to Redis, refresh its status on a timer."""

from __future__ import annotations

import datetime as dt
from typing import Any

import kopf
import pydantic

from jobqueue.broker.queue_admin import QueueAdmin
from jobqueue.errors import ValidationError
from jobqueue_operator.context import GROUP, VERSION, OperatorContext, reconciling
from jobqueue_operator.queue_status import apply_queue_spec, configured_status, invalid_status, live_status
from jobqueue_operator.redis_state import read_queue_status
from jobqueue_operator.spec import JobQueueSpec, configured_queue

KIND, PLURAL = "JobQueue", "jobqueues"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def register_jobqueue(registry: kopf.OperatorRegistry, ctx: OperatorContext) -> None:
    """Register the JobQueue handlers on ``registry``."""

    @kopf.on.resume(GROUP, VERSION, PLURAL, id="configure-queue", registry=registry)
    @kopf.on.create(GROUP, VERSION, PLURAL, id="configure-queue", registry=registry)
    @kopf.on.update(GROUP, VERSION, PLURAL, field="spec", id="configure-queue", registry=registry)
    def configure_queue(
        *, name: str, spec: Any, body: Any, meta: Any, status: Any, patch: Any, **_: Any
    ) -> None:
        generation = int(meta.get("generation") or 0)
        with reconciling(ctx, KIND, "configure"):
            try:
                parsed = JobQueueSpec.model_validate(dict(spec))
                queue = configured_queue(parsed, name)
                apply_queue_spec(QueueAdmin(ctx.client), queue, parsed)
            except (ValidationError, pydantic.ValidationError) as exc:
                patch.status.update(invalid_status(status.get("conditions"), generation, _now(), str(exc)))
                kopf.warn(body, reason="InvalidSpec", message=str(exc))
                raise
            patch.status.update(configured_status(status.get("conditions"), generation, _now()))
            kopf.info(body, reason="Configured", message=f"queue {queue!r} configuration written to Redis")
            if parsed.retries.backoff.deprecated_spelling:
                strategy = parsed.retries.backoff
                kopf.warn(
                    body,
                    reason="DeprecatedValue",
                    message=f"spec.retries.backoff.strategy {strategy.strategy!r} is an old spelling; "
                    f"write {strategy.policy_name!r}",
                )

    @kopf.timer(
        GROUP,
        VERSION,
        PLURAL,
        interval=ctx.settings.interval_seconds,
        backoff=ctx.settings.retry_delay_seconds,  # after an unexpected exception (kopf: 60 s)
        id="refresh-queue-status",
        registry=registry,
    )
    def refresh_queue_status(*, name: str, spec: Any, meta: Any, status: Any, patch: Any, **_: Any) -> None:
        try:
            parsed = JobQueueSpec.model_validate(dict(spec))
            queue = configured_queue(parsed, name)
        except (ValidationError, pydantic.ValidationError):
            return  # the configure handler reported it; nothing live to show
        with reconciling(ctx, KIND, "status"):
            live = read_queue_status(ctx.client, queue)
            generation = int(meta.get("generation") or 0)
            patch.status.update(live_status(parsed, live, status.get("conditions"), generation, _now()))
