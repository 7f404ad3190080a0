"""Tracing across a real worker process, with the real OpenTelemetry SDK: the producer (this process)
records its spans in the SDK's InMemorySpanExporter, the worker process (tests/support/jq_traced_app.py)
exports its spans to a file (tests/support/span_file_exporter.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jq_testing import wait_until
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from span_file_exporter import read_spans

from jobqueue import Client, TaskStatus, ValidationError
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.workflows import submit
from jobqueue.canvas import Signature, chain
from jobqueue.keys import keys_for_task

pytestmark = pytest.mark.timeout(90)

FINAL = {TaskStatus.SUCCESS, TaskStatus.FAILED}
APP = ("--app", "jq_traced_app:app")


@pytest.fixture
def producer_spans() -> Iterator[InMemorySpanExporter]:
    """This process's spans, recorded by the real SDK; the global provider is put back afterwards, so no
    other test's enqueues carry a trace context (the reset OpenTelemetry's own test utilities do)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture
def span_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the worker processes started by the test export their spans."""
    path = tmp_path / "worker-spans.jsonl"
    monkeypatch.setenv("JQ_TEST_SPAN_FILE", str(path))
    return path


def consumer_spans(path: Path, task_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The process spans of a task's attempts, in attempt order, once ``count`` of them were exported."""

    def found() -> list[dict[str, Any]]:
        return [
            s
            for s in read_spans(path)
            if s["kind"] == "CONSUMER" and s["attributes"].get("messaging.message.id") == task_id
        ]

    wait_until(lambda: len(found()) >= count, timeout=30)
    return sorted(found(), key=lambda s: s["attributes"]["jobqueue.attempt"])


def send_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.PRODUCER]
    return span


def ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def finish(client: Client, task_id: str) -> TaskStatus:
    wait_until(lambda: client.get_task(task_id).status in FINAL, timeout=30)
    return client.get_task(task_id).status


@pytest.mark.parametrize("pool", ["thread", "process", "async"])
def test_the_attempt_span_is_a_child_of_the_enqueue_span(
    pool: str,
    client: Client,
    start_worker: Callable[..., Any],
    producer_spans: InMemorySpanExporter,
    span_file: Path,
) -> None:
    start_worker(*APP, "--pool", pool, "--concurrency", "2")
    handle = client.enqueue("add", [2, 3])
    assert finish(client, handle.id) == TaskStatus.SUCCESS

    send = send_span(producer_spans)
    trace_id, send_id = ids(send)
    assert send.name == "send default"
    assert dict(send.attributes or {}) == {
        "messaging.system": "jobqueue",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "default",
        "messaging.message.id": handle.id,
    }
    [process] = consumer_spans(span_file, handle.id)
    assert (process["trace_id"], process["parent_span_id"]) == (trace_id, send_id)
    assert process["name"] == "process default"
    assert process["attributes"] == {
        "messaging.system": "jobqueue",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "default",
        "messaging.message.id": handle.id,
        "jobqueue.task.name": "add",
        "jobqueue.attempt": 1,
        "jobqueue.outcome": "success",
    }
    assert process["status"] == "UNSET"


def test_a_failed_attempt_span_has_error_status_and_the_exception(
    client: Client,
    start_worker: Callable[..., Any],
    producer_spans: InMemorySpanExporter,
    span_file: Path,
) -> None:
    start_worker(*APP, "--pool", "process", "--concurrency", "1")
    handle = client.enqueue("explode", ["boom"])
    assert finish(client, handle.id) == TaskStatus.FAILED
    [process] = consumer_spans(span_file, handle.id)
    assert process["parent_span_id"] == ids(send_span(producer_spans))[1]
    assert (process["status"], process["status_description"]) == ("ERROR", "ValueError: boom")
    assert process["events"] == ["exception"]
    assert process["attributes"]["jobqueue.outcome"] == "error"


@pytest.mark.parametrize("pool", ["thread", "process", "async"])
def test_an_exception_that_cannot_be_formatted_is_recorded_on_the_span_by_its_type(
    pool: str, client: Client, start_worker: Callable[..., Any], span_file: Path
) -> None:
    start_worker(*APP, "--pool", pool, "--concurrency", "1")
    handle = client.enqueue("unprintable")
    assert finish(client, handle.id) == TaskStatus.FAILED
    [process] = consumer_spans(span_file, handle.id)
    expected = ("ERROR", "UnprintableError: <str() failed: RuntimeError>")
    assert (process["status"], process["status_description"]) == expected
    assert process["attributes"]["exception.type"] == "UnprintableError"
    assert client.enqueue("add", [1, 2]).result(timeout=20) == 3


def test_a_retried_task_keeps_its_trace(
    client: Client,
    start_worker: Callable[..., Any],
    producer_spans: InMemorySpanExporter,
    span_file: Path,
) -> None:
    start_worker(*APP, "--pool", "thread")
    handle = client.enqueue("flaky", max_retries=3)  # by name: the client does not see the decorator
    assert finish(client, handle.id) == TaskStatus.SUCCESS
    trace_id, send_id = ids(send_span(producer_spans))
    first, second = consumer_spans(span_file, handle.id, count=2)
    # Both attempts are children of the one enqueue: the retry carried the message's headers.
    assert {(s["trace_id"], s["parent_span_id"]) for s in (first, second)} == {(trace_id, send_id)}
    assert (first["attributes"]["jobqueue.attempt"], second["attributes"]["jobqueue.attempt"]) == (1, 2)
    assert (first["status"], second["status"]) == ("ERROR", "UNSET")


def test_a_chain_and_a_task_enqueued_by_a_task_stay_in_one_trace(
    client: Client,
    start_worker: Callable[..., Any],
    producer_spans: InMemorySpanExporter,
    span_file: Path,
) -> None:
    start_worker(*APP, "--pool", "thread", "--concurrency", "2")
    flow = submit(client, chain(Signature("add", (1, 2)), Signature("fan_out")))
    first, second = flow.tasks
    assert finish(client, second.id) == TaskStatus.SUCCESS
    send = send_span(producer_spans)
    trace_id, send_id = ids(send)
    assert (send.attributes or {})["messaging.batch.message_count"] == 2
    [run_first] = consumer_spans(span_file, first.id)
    [run_second] = consumer_spans(span_file, second.id)
    assert run_first["trace_id"] == run_second["trace_id"] == trace_id
    assert run_first["parent_span_id"] == run_second["parent_span_id"] == send_id

    # fan_out (3 + 3) enqueued add from inside its attempt: a send span under that attempt, and the
    # new task's attempt under that send span, all in the workflow's trace.
    grandchild = client.get_task(second.id).result
    assert finish(client, grandchild) == TaskStatus.SUCCESS
    [inner_run] = consumer_spans(span_file, grandchild)
    [inner_send] = [
        s
        for s in read_spans(span_file)
        if s["kind"] == "PRODUCER" and s["span_id"] == inner_run["parent_span_id"]
    ]
    assert inner_send["parent_span_id"] == run_second["span_id"]
    assert inner_run["trace_id"] == inner_send["trace_id"] == trace_id


def test_a_batch_is_one_send_span_whose_context_every_message_carries(
    client: Client,
    start_worker: Callable[..., Any],
    producer_spans: InMemorySpanExporter,
    span_file: Path,
) -> None:
    start_worker(*APP, "--pool", "thread", "--concurrency", "4")
    handles = client.enqueue_many([make_request("add", [i, i]) for i in range(5)])
    for handle in handles:
        assert finish(client, handle.id) == TaskStatus.SUCCESS
    send = send_span(producer_spans)
    assert (send.attributes or {})["messaging.batch.message_count"] == 5
    assert "messaging.message.id" not in (send.attributes or {})
    trace_id, send_id = ids(send)
    for handle in handles:
        [run] = consumer_spans(span_file, handle.id)
        assert (run["trace_id"], run["parent_span_id"]) == (trace_id, send_id)


def test_a_dead_letter_replay_keeps_the_trace(
    client: Client,
    start_worker: Callable[..., Any],
    producer_spans: InMemorySpanExporter,
    span_file: Path,
) -> None:
    handle = client.enqueue("explode", ["once"])
    start_worker(*APP, "--pool", "thread")
    assert finish(client, handle.id) == TaskStatus.FAILED
    wait_until(lambda: client.dead_letter_stats("default").total == 1, timeout=30)
    client.replay_dead_letter(handle.id)
    first, second = consumer_spans(span_file, handle.id, count=2)
    trace_id, send_id = ids(send_span(producer_spans))
    assert {(s["trace_id"], s["parent_span_id"]) for s in (first, second)} == {(trace_id, send_id)}


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '{"traceparent": 5, "x\\u0000": "y"}',
        '{"traceparent": "\\ud800"}',
        "[" * 3000 + "]" * 3000,
        '{"traceparent": "' + "0" * 100_000 + '"}',
    ],
    ids=["not-json", "non-string-and-nul", "lone-surrogate", "deep-nesting", "huge"],
)
def test_hostile_headers_written_into_redis_cost_the_link_not_the_attempt(
    raw: str,
    client: Client,
    start_worker: Callable[..., Any],
    span_file: Path,
) -> None:
    handle = client.enqueue("add", [1, 1], countdown=600)
    key = keys_for_task(client.settings.key_prefix, handle.id).task(handle.id)
    client.redis.hset(key, "headers", raw)  # as another program might: nothing validated it
    worker = start_worker(*APP, "--pool", "thread")
    client.redis.zadd(keys_for_task(client.settings.key_prefix, handle.id).delayed, {handle.id: 0})
    assert finish(client, handle.id) == TaskStatus.SUCCESS
    [run] = consumer_spans(span_file, handle.id)
    assert run["parent_span_id"] is None  # a root span: the context was unreadable
    # and the worker keeps serving
    assert finish(client, client.enqueue("add", [2, 2]).id) == TaskStatus.SUCCESS
    assert "message headers" in worker.log()


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"x-id": "a\x00b"}, "headers.x-id"),
        ({"x-id": "\ud800"}, "headers.x-id"),
        ({"x-id": "é"}, "headers.x-id"),
        ({"x-id": "a" * 2000}, "headers.x-id"),
        ({"x-id": 10**100}, "headers.x-id"),
        ({"bad\x00name": "v"}, "headers.?"),
        ({f"h{i}": "v" for i in range(17)}, "headers"),
        ({f"h{i}": "v" * 1000 for i in range(5)}, "headers"),
        (["traceparent"], "headers"),
    ],
)
def test_hostile_headers_from_a_caller_are_refused_naming_the_header(
    headers: Any, field: str, client: Client
) -> None:
    with pytest.raises(ValidationError) as caught:
        client.enqueue("add", [1, 1], headers=headers)
    assert caught.value.field == field


def test_a_callers_headers_travel_with_the_trace_context(
    client: Client, producer_spans: InMemorySpanExporter
) -> None:
    handle = client.enqueue("add", [1, 1], headers={"x-request-id": "r-42"}, countdown=600)
    key = keys_for_task(client.settings.key_prefix, handle.id).task(handle.id)
    stored = json.loads(client.redis.hget(key, "headers"))
    trace_id, send_id = ids(send_span(producer_spans))
    assert stored.keys() == {"x-request-id", "traceparent"} and stored["x-request-id"] == "r-42"
    assert stored["traceparent"].startswith(f"00-{trace_id}-{send_id}-")  # then the trace flags
