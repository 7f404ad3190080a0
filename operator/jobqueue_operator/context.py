"""What every handler receives: connections, settings and metrics built once by the entry point, and the
one place where errors become kopf's temporary or permanent errors."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import kopf
import pydantic
from kubernetes.client.exceptions import ApiException

from jobqueue.broker.client import Client
from jobqueue.errors import BrokerUnavailable, ScheduleNotFound, ValidationError
from jobqueue_operator.kube import Kube
from jobqueue_operator.metrics import OperatorMetrics
from jobqueue_operator.settings import OperatorSettings

GROUP = "jobqueue.dev"
VERSION = "v1alpha1"


class InvalidSpec(Exception):
    """A spec the API server accepted but the operator cannot apply (e.g. an unknown time zone)."""


def namespace_of(namespace: str | None) -> str:
    """The namespace of a resource; every jobqueue CRD is namespaced, so kopf always passes one."""
    if not namespace:
        raise kopf.PermanentError("jobqueue resources are namespaced")
    return namespace


@dataclass(frozen=True)
class OperatorContext:
    """Shared by all handlers of one operator process."""

    settings: OperatorSettings
    client: Client
    kube: Kube
    metrics: OperatorMetrics


@contextlib.contextmanager
def reconciling(ctx: OperatorContext, kind: str, handler: str) -> Iterator[None]:
    """Time a reconcile, count its outcome, and translate failures for kopf.

    Redis or the API server unreachable → TemporaryError (kopf retries after a delay; the process never
    crash-loops), outcome ``retry``. A spec the core rejects → PermanentError (retrying cannot help; the
    handler has already written a condition explaining why), outcome ``error``, like any other exception.
    """
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except (BrokerUnavailable, ApiException) as exc:
        outcome = "retry"
        ctx.metrics.reconcile_errors.labels(kind, handler, type(exc).__name__).inc()
        raise kopf.TemporaryError(
            f"{type(exc).__name__}: {exc}", delay=ctx.settings.retry_delay_seconds
        ) from exc
    except (ValidationError, InvalidSpec, ScheduleNotFound, pydantic.ValidationError) as exc:
        ctx.metrics.reconcile_errors.labels(kind, handler, "InvalidSpec").inc()
        raise kopf.PermanentError(str(exc)) from exc
    except kopf.TemporaryError:
        outcome = "retry"
        raise
    except Exception as exc:
        ctx.metrics.reconcile_errors.labels(kind, handler, type(exc).__name__).inc()
        raise
    finally:
        ctx.metrics.reconciliations.labels(kind, outcome).inc()
        ctx.metrics.reconcile_duration.labels(kind).observe(time.perf_counter() - started)
