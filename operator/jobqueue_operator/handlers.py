"""The operator's kopf registry: every handler registered on an explicit registry (no import-time
registration on kopf's global one), so the entry point and the tests build exactly what they run."""

from __future__ import annotations

from typing import Any

import kopf

from jobqueue_operator.context import OperatorContext
from jobqueue_operator.handlers_jobqueue import register_jobqueue
from jobqueue_operator.handlers_recurring import register_recurring
from jobqueue_operator.handlers_workerpool import register_workerpool


def build_registry(ctx: OperatorContext) -> kopf.OperatorRegistry:
    """A registry with the login, settings and the JobQueue, WorkerPool and RecurringTask handlers."""
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> Any:
        # In-cluster service account, else KUBECONFIG: the same rules as the official client.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # The CRDs' status schemas declare their fields, so kopf must keep its bookkeeping in annotations
        # (the API server would prune a status.kopf field).
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="jobqueue.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix="jobqueue.dev")
        settings.persistence.finalizer = "jobqueue.dev/finalizer"
        settings.posting.level = 20  # INFO and above become Kubernetes Events
        # Sync handlers run in this pool; timers of many pools must not wait on one another.
        settings.execution.max_workers = 8

    register_jobqueue(registry, ctx)
    register_workerpool(registry, ctx)
    register_recurring(registry, ctx)
    return registry
