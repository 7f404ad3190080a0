"""OpenTelemetry tracing, optional: active only when the ``jobqueue[otel]`` extra (opentelemetry-api)
is installed and the process set tracing up, a no-op otherwise (opentelemetry is imported only then).

jobqueue uses the OpenTelemetry *API* only: which spans are kept and where they go is the application's
TracerProvider (the SDK and an exporter, configured by the application: in the producer's process, and in
each worker process, e.g. from an ``@app.on_worker_start`` hook). Without one, the API's default provider
records nothing, and jobqueue's spans cost next to nothing.

The spans follow the OpenTelemetry messaging semantic conventions:

- enqueue (one task, a batch, a workflow) is a PRODUCER span ``send <queue>`` with ``messaging.system``
  = ``jobqueue``, ``messaging.operation.type`` / ``.name`` = ``send``, ``messaging.destination.name``,
  and ``messaging.message.id`` (one task) or ``messaging.batch.message_count`` (several). Its context,
  W3C ``traceparent`` / ``tracestate`` from the global propagator, goes into every message's headers
  (jobqueue.headers), so one send span is the creation context of each message of a batch (the
  conventions' "send" without "create" spans).
- each attempt is a CONSUMER span ``process <queue>``, child of the context the message carries, with
  ``messaging.operation.type`` = ``process``, ``messaging.message.id`` = the task id, and
  ``jobqueue.task.name`` and ``jobqueue.attempt``. An attempt that does not succeed sets status ERROR
  with the error text, and records the exception it raised. The headers stay on the task through its
  retries and a dead-letter replay, so every attempt of a task is in the trace that enqueued it, and a
  task enqueued from inside a task continues its trace.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jobqueue.headers import clean_headers, decode_headers

TRACER_NAME = "jobqueue"
MESSAGING_SYSTEM = "jobqueue"
# Error text on a span's status is for a glance; the full text is on the task record.
MAX_STATUS_CHARS = 512

# The OpenTelemetry API costs tens of milliseconds to import, paid by every worker at start and every
# producer, so it is imported only once the process set tracing up: a TracerProvider or a current span
# needs opentelemetry.trace imported first (by the application, or auto-instrumentation), or the API's own
# variable names a provider; baggage to carry needs opentelemetry.baggage. opentelemetry.trace alone is not
# enough to import the rest: redis-py 7+ imports it with the metrics SDK whenever that is installed.
_PROVIDER_VARIABLE = "OTEL_PYTHON_TRACER_PROVIDER"
_CONTEXT_MODULES = ("opentelemetry.baggage", "opentelemetry.propagate")


@dataclass(frozen=True)
class _Api:
    """The parts of the OpenTelemetry API used here (modules, hence Any)."""

    trace: Any
    propagate: Any
    span_kind: Any
    status: Any
    status_code: Any


@functools.cache
def _api() -> _Api | None:
    """The OpenTelemetry API, imported on first use; None when the jobqueue[otel] extra is absent."""
    try:
        from opentelemetry import propagate, trace  # noqa: PLC0415 - see _SET_UP_BY
        from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: PLC0415
    except ImportError:  # every function below is a no-op
        return None
    return _Api(trace, propagate, SpanKind, Status, StatusCode)


def installed() -> bool:
    """Whether the OpenTelemetry API is installed (imports it)."""
    return _api() is not None


def _trace_module() -> Any:
    """opentelemetry.trace when this process may have set tracing up, else None (not imported here)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is not None or _PROVIDER_VARIABLE not in os.environ:
        return trace
    api = _api()
    return api.trace if api is not None else None


def active() -> bool:
    """Whether an enqueue has anything to record or carry: a TracerProvider is installed, or a valid
    trace context is current (one extracted by some instrumentation). Neither: the API would only make
    non-recording spans and inject nothing, at a cost measured at tens of microseconds per enqueue, so
    the clients skip it (a few microseconds to ask: docs/observability.md)."""
    trace = _trace_module()
    if trace is None:
        return False
    if trace.get_current_span().get_span_context().is_valid:
        return True
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider)


@contextmanager
def send_span(queues: Sequence[str], message_ids: Sequence[str] = ()) -> Iterator[Any]:
    """The PRODUCER span of one enqueue call, current while the messages are built (so
    ``message_headers`` injects it) and sent. ``queues``: the destination of each message (the first
    names the span: a batch over several queues is one span). ``message_ids``: when known before the
    send (a workflow's). Exceptions propagate, recorded on the span with status ERROR."""
    api = _api() if queues and active() else None
    if api is None:
        yield None
        return
    destination = queues[0]
    attributes: dict[str, str | int] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": destination,
    }
    if len(queues) > 1:
        attributes["messaging.batch.message_count"] = len(queues)
    elif len(message_ids) == 1:
        attributes["messaging.message.id"] = message_ids[0]
    tracer = api.trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"send {destination}", kind=api.span_kind.PRODUCER, attributes=attributes
    ) as span:
        yield span


def record_sent(span: Any, message_ids: Sequence[str]) -> None:
    """Name the one message a send span sent, once its id is known (ids of a batch are not listed:
    the conventions set messaging.message.id only for a single message)."""
    if span is not None and len(message_ids) == 1:
        span.set_attribute("messaging.message.id", message_ids[0])


def current_trace_headers() -> dict[str, str]:
    """The current trace context as message headers (W3C ``traceparent`` / ``tracestate`` from the
    global propagator), {} when there is none. What the propagator writes is checked like any header
    from elsewhere (dropped with a warning if invalid)."""
    if not active() and not any(name in sys.modules for name in _CONTEXT_MODULES):
        return {}
    api = _api()
    if api is None:
        return {}
    carrier: dict[str, str] = {}
    api.propagate.inject(carrier)
    return clean_headers(carrier, "the trace context propagator") if carrier else {}


def merge_headers(own: Mapping[str, str], context: Mapping[str, str]) -> Mapping[str, str]:
    """A message's own headers with the trace context added (the context wins over a header of the same
    name; what the merge pushes past the limits is dropped with a warning, the message's own headers
    first: the context is kept whole)."""
    if not own:
        return context
    merged = dict(context)
    merged.update((name, value) for name, value in own.items() if name not in context)
    return clean_headers(merged, "the trace context added to the message's headers")


@contextmanager
def process_span(headers_json: str, *, task_id: str, name: str, queue: str, attempt: int) -> Iterator[Any]:
    """The CONSUMER span of one attempt, child of the context the message carries, current while the
    task runs. Never raises for bad headers (decode_headers drops them: the span is then a root)."""
    # Headers may carry a producer's trace context: extracting it (the API imported once per process)
    # keeps a task enqueued from inside this one in the same trace, even with no TracerProvider here.
    api = _api() if headers_json or active() else None
    if api is None:
        yield None
        return
    parent = api.propagate.extract(decode_headers(headers_json, task_id)) if headers_json else None
    attributes: dict[str, str | int] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": task_id,
        "jobqueue.task.name": name,
        "jobqueue.attempt": attempt,
    }
    tracer = api.trace.get_tracer(TRACER_NAME)
    # The outcome sets the status (record_outcome): the task's exception is caught before it reaches here.
    with tracer.start_as_current_span(
        f"process {queue}",
        context=parent,
        kind=api.span_kind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def record_outcome(span: Any, status: str, error: str, raised: BaseException | None) -> None:
    """Set an attempt's span from its outcome (``status``: success, error, timeout, cancelled,
    rejected): ERROR with the error text unless it succeeded, and the exception it raised."""
    if span is None:
        return
    span.set_attribute("jobqueue.outcome", status)
    if status == "success":
        return
    if raised is not None:
        try:
            span.record_exception(raised)  # str(raised) inside: a user's __str__ may raise
        except Exception:
            span.set_attribute("exception.type", type(raised).__qualname__)
    api = _api()
    if api is not None:  # a span exists only where the API was imported
        span.set_status(api.status(api.status_code.ERROR, error[:MAX_STATUS_CHARS]))
