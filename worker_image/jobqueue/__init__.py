"""jobqueue: a distributed job queue on Redis with a PostgreSQL record and a Kubernetes operator.

Public API::

    from jobqueue import App, Priority
    app = App()

    @app.task(queue="default", priority=Priority.HIGH, max_retries=3)
    def add(x, y):
        return x + y

    add.enqueue(1, 2).result(timeout=10)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The public names resolve on first use (PEP 562), so `import jobqueue` and `from jobqueue.settings import
# Settings` cost only what they name: a worker, a CLI command or a web app that enqueues pays for the sync
# client alone, not for the asyncio client, workflows and queue administration too (the worker's cold
# start, docs/benchmarks.md). Type checkers and readers see the same names through the imports below.
if TYPE_CHECKING:
    from jobqueue.app import App
    from jobqueue.broker.aio import AsyncClient, AsyncTaskHandle
    from jobqueue.broker.client import Client, TaskHandle
    from jobqueue.broker.workflows import WorkflowHandle
    from jobqueue.canvas import Signature, chain, chord, dag, group
    from jobqueue.context import TaskContext, current_context
    from jobqueue.errors import (
        BrokerUnavailable,
        ConfigurationError,
        InvalidProgress,
        InvalidTransition,
        JobQueueError,
        NotSerializable,
        PayloadTooLarge,
        ResultTimeout,
        Retry,
        SoftTimeout,
        TaskCancelled,
        TaskExpired,
        TaskFailed,
        TaskNotFound,
        TaskTimeout,
        ValidationError,
        WorkerCrashed,
    )
    from jobqueue.hooks import DeadLetterNotice, TaskOutcome
    from jobqueue.models import CancelReason, DeadLetterReason, Priority, TaskRecord, TaskStatus
    from jobqueue.retry import RetryPolicy
    from jobqueue.settings import Settings
    from jobqueue.task_calls import TaskArgs
    from jobqueue.task_definition import TaskDefinition

_EXPORTS: dict[str, str] = {
    "App": "jobqueue.app",
    "AsyncClient": "jobqueue.broker.aio",
    "AsyncTaskHandle": "jobqueue.broker.aio",
    "Client": "jobqueue.broker.client",
    "TaskHandle": "jobqueue.broker.client",
    "WorkflowHandle": "jobqueue.broker.workflows",
    "Signature": "jobqueue.canvas",
    "chain": "jobqueue.canvas",
    "chord": "jobqueue.canvas",
    "dag": "jobqueue.canvas",
    "group": "jobqueue.canvas",
    "TaskContext": "jobqueue.context",
    "current_context": "jobqueue.context",
    "BrokerUnavailable": "jobqueue.errors",
    "ConfigurationError": "jobqueue.errors",
    "InvalidProgress": "jobqueue.errors",
    "InvalidTransition": "jobqueue.errors",
    "JobQueueError": "jobqueue.errors",
    "NotSerializable": "jobqueue.errors",
    "PayloadTooLarge": "jobqueue.errors",
    "ResultTimeout": "jobqueue.errors",
    "Retry": "jobqueue.errors",
    "SoftTimeout": "jobqueue.errors",
    "TaskCancelled": "jobqueue.errors",
    "TaskExpired": "jobqueue.errors",
    "TaskFailed": "jobqueue.errors",
    "TaskNotFound": "jobqueue.errors",
    "TaskTimeout": "jobqueue.errors",
    "ValidationError": "jobqueue.errors",
    "WorkerCrashed": "jobqueue.errors",
    "DeadLetterNotice": "jobqueue.hooks",
    "TaskOutcome": "jobqueue.hooks",
    "CancelReason": "jobqueue.models",
    "DeadLetterReason": "jobqueue.models",
    "Priority": "jobqueue.models",
    "TaskRecord": "jobqueue.models",
    "TaskStatus": "jobqueue.models",
    "RetryPolicy": "jobqueue.retry",
    "Settings": "jobqueue.settings",
    "TaskArgs": "jobqueue.task_calls",
    "TaskDefinition": "jobqueue.task_definition",
}


def __getattr__(name: str) -> Any:
    """Import the module that defines a public name the first time it is asked for."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jobqueue' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "App",
    "AsyncClient",
    "AsyncTaskHandle",
    "BrokerUnavailable",
    "CancelReason",
    "Client",
    "ConfigurationError",
    "DeadLetterNotice",
    "DeadLetterReason",
    "InvalidProgress",
    "InvalidTransition",
    "JobQueueError",
    "NotSerializable",
    "PayloadTooLarge",
    "Priority",
    "ResultTimeout",
    "Retry",
    "RetryPolicy",
    "Settings",
    "Signature",
    "SoftTimeout",
    "TaskArgs",
    "TaskCancelled",
    "TaskContext",
    "TaskDefinition",
    "TaskExpired",
    "TaskFailed",
    "TaskHandle",
    "TaskNotFound",
    "TaskOutcome",
    "TaskRecord",
    "TaskStatus",
    "TaskTimeout",
    "ValidationError",
    "WorkerCrashed",
    "WorkflowHandle",
    "chain",
    "chord",
    "current_context",
    "dag",
    "group",
]
