"""OpenTelemetry tracing, optional: active only when the ``jobqueue[otel]`` extra (opentelemetry-api)
is installed, a no-op otherwise (nothing here imports opentelemetry when it is absent).

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

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from jobqueue.headers import clean_headers, decode_headers

try:
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the jobqueue[otel] extra is not installed: every function below is a no-op
    ENABLED = False
else:
    ENABLED = True

TRACER_NAME = "jobqueue"
MESSAGING_SYSTEM = "jobqueue"
# Error text on a span's status is for a glance; the full text is on the task record.
MAX_STATUS_CHARS = 512


def active() -> bool:
    """Whether an enqueue has anything to record or carry: a TracerProvider is installed, or a valid
    trace context is current (one extracted by some instrumentation). Neither: the API would only make
    non-recording spans and inject nothing, at a cost measured at tens of microseconds per enqueue, so
    the clients skip it (a few microseconds to ask: docs/observability.md)."""
    if not ENABLED:
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
    if not queues or not active():
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
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"send {destination}", kind=SpanKind.PRODUCER, attributes=attributes
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
    if not ENABLED:
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
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
    if not ENABLED or (not headers_json and not active()):
        yield None
        return
    parent = propagate.extract(decode_headers(headers_json, task_id)) if headers_json else None
    attributes: dict[str, str | int] = {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": task_id,
        "jobqueue.task.name": name,
        "jobqueue.attempt": attempt,
    }
    tracer = trace.get_tracer(TRACER_NAME)
    # The outcome sets the status (record_outcome): the task's exception is caught before it reaches here.
    with tracer.start_as_current_span(
        f"process {queue}",
        context=parent,
        kind=SpanKind.CONSUMER,
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
        span.record_exception(raised)
    span.set_status(Status(StatusCode.ERROR, error[:MAX_STATUS_CHARS]))
