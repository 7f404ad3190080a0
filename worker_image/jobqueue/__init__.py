"""jobqueue: a distributed job queue on Redis with a PostgreSQL record and a Kubernetes operator.

Public API::

    from jobqueue import App, Priority
    app = App()

    @app.task(queue="default", priority=Priority.HIGH, max_retries=3)
    def add(x, y):
        return x + y

    add.enqueue(1, 2).result(timeout=10)
"""

from jobqueue.app import App, TaskDefinition
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
