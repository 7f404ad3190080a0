"""An app whose worker processes trace with the real OpenTelemetry SDK: each process that serves tasks
(the worker, and each child of the process pool) installs a TracerProvider exporting every span to the
file named by JQ_TEST_SPAN_FILE (span_file_exporter), as an application would install its OTLP exporter.
Workers import it with --app jq_traced_app:app."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from span_file_exporter import FileSpanExporter

from jobqueue import App, Retry, TaskContext

app = App()


@app.on_worker_start
def install_tracing() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(os.environ["JQ_TEST_SPAN_FILE"])))
    trace.set_tracer_provider(provider)


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task(max_retries=0)
def explode(message: str) -> None:
    raise ValueError(message)


class UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no message for you")


@app.task(max_retries=0)
def unprintable() -> None:
    raise UnprintableError


@app.task(bind=True, max_retries=3)
def flaky(ctx: TaskContext) -> int:
    """Asks to be retried at once on its first attempt, succeeds on the second."""
    if ctx.attempt == 1:
        raise Retry(0, reason="try again")
    return ctx.attempt


@app.task
def fan_out(x: int) -> str:
    """Enqueues a task from inside a task: the new message carries this attempt's trace context."""
    return add.enqueue(x, x).id
