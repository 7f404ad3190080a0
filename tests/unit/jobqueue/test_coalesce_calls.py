"""Auto-pipelining's merge of one-task enqueue calls (batch_enqueue.coalesce_calls): consecutive calls of
one queue and spec become one call carrying each task as a batch of them would, anything else is sent as
it was, and every caller's reply is found again."""

from __future__ import annotations

from jobqueue import Settings
from jobqueue.broker.batch_enqueue import coalesce_calls, plan_enqueue, single_plain_call, spread_replies
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.scripts import ScriptCall

SETTINGS = Settings()


def _one(name: str = "add", queue: str = "default", **options: object) -> ScriptCall:
    return single_plain_call(SETTINGS, make_request(name, [1], queue=queue, **options))[1]  # type: ignore[arg-type]


def test_a_run_of_one_spec_becomes_the_call_a_batch_makes() -> None:
    calls = [_one() for _ in range(3)]
    merged, where = coalesce_calls(calls)
    [call] = merged
    assert where == [(0, 0), (0, 1), (0, 2)]
    # The same layout as the batch path's call: shared keys and spec once, then per task its key and values.
    planned = plan_enqueue(SETTINGS, [make_request("add", [1]) for _ in range(3)]).calls[0]
    assert len(call.keys) == len(planned.keys) and len(call.args) == len(planned.args)
    assert call.keys[: len(calls[0].keys) - 1] == calls[0].keys[:-1]
    assert call.keys[-3:] == tuple(c.keys[-1] for c in calls)
    assert call.args[-15:] == tuple(v for c in calls for v in c.args[-5:])


def test_only_consecutive_calls_of_one_queue_and_spec_merge_so_order_holds() -> None:
    unique = plan_enqueue(SETTINGS, [make_request("add", [1], unique=True)]).calls[0]
    calls = [_one(), _one(), _one("other"), _one(), unique, _one(), _one(queue="q2"), _one(priority="high")]
    merged, where = coalesce_calls(calls)
    assert [c.script for c in merged] == ["enqueue_many"] * 3 + ["enqueue"] + ["enqueue_many"] * 3
    assert where == [(0, 0), (0, 1), (1, 0), (2, 0), (3, -1), (4, 0), (5, 0), (6, 0)]
    assert merged[3] is unique


def test_a_run_is_cut_at_the_call_size_bound() -> None:
    merged, where = coalesce_calls([_one() for _ in range(5)], max_per_call=2)
    assert [len(c.args) for c in merged] == [len(merged[0].args)] * 2 + [len(merged[2].args)]
    assert where == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]


def test_replies_are_spread_back_per_call_and_an_error_reaches_each_merged_caller() -> None:
    error = RuntimeError("WRONGTYPE")
    replies = [["QUEUED", "DELAYED"], [0, "QUEUED", "x"], error]
    where = [(0, 0), (0, 1), (1, -1), (2, 0), (2, 1)]
    assert spread_replies(replies, where) == [["QUEUED"], ["DELAYED"], [0, "QUEUED", "x"], error, error]
