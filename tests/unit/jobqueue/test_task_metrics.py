"""Run time / queue wait histograms: local aggregation, the flush payload and the cumulative read-back."""

import pytest

from jobqueue.broker.completion import CompletionCode
from jobqueue.broker.leases import OutcomeKind
from jobqueue.broker.task_metrics import (
    FAILED,
    MAX_FLUSHES_IN_DOUBT,
    OTHER_TASK,
    RETRIED,
    RUN,
    RUN_BUCKETS,
    WAIT,
    WAIT_BUCKETS,
    Histogram,
    MetricsFlush,
    TaskMetrics,
    build_flush,
    outcome_counter,
    read_counters,
    read_histograms,
)

pytestmark = pytest.mark.timeout(10)


def as_redis_hash(pending: list[MetricsFlush], queue: str) -> dict[str, str]:
    (flush,) = [f for f in pending if f.queue == queue]
    return {**{k: str(v) for k, v in flush.ints.items()}, **{k: repr(v) for k, v in flush.floats.items()}}


def test_a_value_on_a_bound_falls_in_that_bucket_and_negatives_count_as_zero() -> None:
    h = Histogram((0.1, 1.0))
    for value in (0.1, 0.5, 1.0, 7.0, -3.0):
        h.observe(value)
    assert h.buckets == [2, 2, 1]  # (<= 0.1: 0.1 and -3 as 0), (<= 1: 0.5, 1.0), +Inf: 7
    assert h.count == 5 and h.total == pytest.approx(8.6)


def test_read_back_is_cumulative_with_every_bound_and_inf_equal_to_count() -> None:
    metrics = TaskMetrics(lambda name: True)
    for seconds in (0.004, 0.004, 0.2, 42.0):
        metrics.observe_run("q", "resize", seconds)
    (h,) = read_histograms(RUN, as_redis_hash(metrics.take(), "q"), RUN_BUCKETS)
    buckets = dict(h.buckets)
    assert h.task == "resize" and [le for le, _ in h.buckets] == [*map(repr, RUN_BUCKETS), "+Inf"]
    assert buckets["0.001"] == 0 and buckets["0.005"] == 2 and buckets["0.25"] == 3
    assert buckets["30.0"] == 3 and buckets["60.0"] == 4 and buckets["+Inf"] == 4
    assert h.total == pytest.approx(42.208)


def test_unregistered_names_and_names_past_the_cap_are_folded_into_one_label() -> None:
    metrics = TaskMetrics(lambda name: name.startswith("known"), max_tasks=2)
    for name in ("known1", "known2", "known3", "typo"):
        metrics.observe_run("q", name, 0.01)
    tasks = {h.task for h in read_histograms(RUN, as_redis_hash(metrics.take(), "q"), RUN_BUCKETS)}
    assert tasks == {"known1", "known2", OTHER_TASK}


def test_waits_skip_unknown_values_and_are_per_queue() -> None:
    metrics = TaskMetrics(lambda name: True)
    metrics.observe_waits("a", [5, -1, 2000])
    metrics.observe_waits("b", [-1])
    pending = metrics.take()
    assert [flush.queue for flush in pending] == ["a"]
    (h,) = read_histograms(WAIT, as_redis_hash(pending, "a"), WAIT_BUCKETS)
    assert dict(h.buckets)["0.005"] == 1 and dict(h.buckets)["5.0"] == 2 and h.total == pytest.approx(2.005)


def test_an_unconfirmed_flush_is_sent_again_unchanged_before_newer_observations() -> None:
    metrics = TaskMetrics(lambda name: True)
    metrics.observe_run("q", "t", 0.3)
    metrics.observe_waits("q", [10])
    (lost,) = metrics.take()  # sent, but no reply came
    metrics.observe_run("q", "t", 0.3)
    again, newer = metrics.take()
    assert again == lost  # same number: Redis skips it if it was applied after all
    assert newer.seq > lost.seq and newer.ints == {"run:0.5:t": 1, "run:count:t": 1}
    metrics.confirm([again, newer])
    assert metrics.take() == []


def test_flushes_in_doubt_are_bounded() -> None:
    metrics = TaskMetrics(lambda name: True)
    for _ in range(MAX_FLUSHES_IN_DOUBT + 5):
        metrics.observe_run("q", "t", 0.3)
        pending = metrics.take()
    assert len(pending) == MAX_FLUSHES_IN_DOUBT and pending[0].seq == 6


def test_flush_call_carries_its_number_and_puts_integer_increments_first() -> None:
    flush = MetricsFlush("q", 7, {"run:0.5:t": 2, "run:count:t": 2}, {"run:sum:t": 0.6})
    call = build_flush("jq", "w1", flush)
    assert call.script == "task_metrics"
    assert call.keys == ("jq:{q}:metrics", "jq:{q}:metrics:applied:w1")
    assert call.args == (7, 3600, 2, "run:0.5:t", 2, "run:count:t", 2, "run:sum:t", "0.6")


def test_counts_under_bounds_of_another_version_still_add_up() -> None:
    fields = {"run:0.2:t": "1", "run:0.5:t": "1", "run:count:t": "2", "run:sum:t": "0.5", "junk": "x"}
    (h,) = read_histograms(RUN, fields, (0.5,))
    assert h.buckets == [("0.2", 1.0), ("0.5", 2.0), ("+Inf", 2.0)]


def test_failures_and_retries_are_counted_per_queue_and_task_in_the_same_flush() -> None:
    metrics = TaskMetrics(lambda name: name != "typo")
    metrics.observe_run("q", "resize", 0.2)
    for queue, task, kind in [
        ("q", "resize", RETRIED), ("q", "resize", RETRIED), ("q", "resize", FAILED),
        ("q", "typo", FAILED), ("other", "resize", RETRIED),
    ]:  # fmt: skip
        metrics.count(queue, task, kind)
    pending = metrics.take()
    assert sorted(f.queue for f in pending) == ["other", "q"]  # one flush (one script call) per queue
    q = as_redis_hash(pending, "q")
    assert read_counters(RETRIED, q) == {"resize": 2}
    assert read_counters(FAILED, q) == {"resize": 1, OTHER_TASK: 1}  # an unregistered name is folded
    assert read_histograms(RUN, q, RUN_BUCKETS)[0].task == "resize"  # the histogram rides along
    assert read_counters(RETRIED, as_redis_hash(pending, "other")) == {"resize": 1}
    metrics.confirm(pending)
    assert metrics.take() == []  # counted once


def test_counter_read_back_ignores_histogram_fields_and_garbage() -> None:
    fields = {"failed:a:b": "3", "run:count:failed": "9", "failed:x": "NaN", "failed": "1", "retried:": "2"}
    assert read_counters(FAILED, fields) == {"a:b": 3}  # a task name may hold a colon
    assert read_counters(RETRIED, fields) == {"": 2}


@pytest.mark.parametrize(
    ("code", "kind", "counter"),
    [
        (CompletionCode.RETRY_SCHEDULED, OutcomeKind.ERROR, RETRIED),
        (CompletionCode.RETRY_SCHEDULED, OutcomeKind.CRASHED, RETRIED),
        (CompletionCode.FINISHED, OutcomeKind.ERROR, FAILED),
        (CompletionCode.FINISHED, OutcomeKind.TIMEOUT, FAILED),
        (CompletionCode.FINISHED, OutcomeKind.REJECTED, FAILED),
        (CompletionCode.FINISHED, OutcomeKind.CANCELLED, None),
        (CompletionCode.SUCCEEDED, OutcomeKind.SUCCESS, None),
        (CompletionCode.RELEASED, OutcomeKind.ERROR, None),
        (CompletionCode.FENCED, OutcomeKind.ERROR, None),  # Redis refused a stale attempt: not counted
        (CompletionCode.LEASE_LOST, OutcomeKind.ERROR, None),
    ],
)
def test_only_what_redis_recorded_as_a_retry_or_a_final_failure_counts(
    code: CompletionCode, kind: OutcomeKind, counter: str | None
) -> None:
    assert outcome_counter(code, kind) == counter


def test_a_registered_name_redis_cannot_store_is_folded_so_the_flush_always_encodes() -> None:
    metrics = TaskMetrics(lambda name: True)
    for name in ("nul\x00name", "lone\udcffsurrogate"):
        metrics.observe_run("q", name, 0.1)
        metrics.count("q", name, FAILED)
    (flush,) = metrics.take()
    assert read_counters(FAILED, as_redis_hash([flush], "q")) == {OTHER_TASK: 2}
    call = build_flush("p", metrics.writer, flush)
    for arg in call.args:
        str(arg).encode("utf-8")  # what redis-py does: a lone surrogate would raise here
