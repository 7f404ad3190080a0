"""The pure planning of enqueue calls: the one-by-one path builds exactly the call a batch of one does, and
the shared spec leaves out what is a default or known from the id."""

from __future__ import annotations

import datetime as dt

import pytest

from jobqueue import Settings
from jobqueue.broker.batch_enqueue import plan_enqueue, single_plain_call
from jobqueue.broker.enqueue import EnqueueRequest, make_request
from jobqueue.broker.enqueue_call import shared_spec
from jobqueue.errors import NotSerializable
from jobqueue.serialization import dumps

REQUESTS = [
    make_request("add", [1, "x"], {"k": [2]}),
    make_request("add", [], queue="other", priority="high", max_retries=3, timeout=5, result_ttl=60),
    make_request("add", [1], countdown=1.5),
    make_request("add", [1], eta=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
]


@pytest.mark.parametrize("request_", REQUESTS)
def test_one_by_one_builds_the_call_a_batch_of_one_builds(request_: EnqueueRequest) -> None:
    settings = Settings()
    task_id, call = single_plain_call(settings, request_)
    [planned] = plan_enqueue(settings, [request_]).calls
    planned_id = planned.args[-5]
    assert task_id.startswith(request_.queue + ".")
    assert call.script == planned.script == "enqueue_many"
    assert call.keys[:-1] == planned.keys[:-1]
    assert call.keys[-1] == planned.keys[-1].replace(str(planned_id), task_id)
    assert call.args[:-5] == planned.args[:-5]
    assert (call.args[-5], *call.args[-4:]) == (task_id, *planned.args[-4:])


def test_the_shared_spec_writes_no_default_and_no_queue() -> None:
    settings = Settings()
    plain = dict(zip(*[iter(shared_spec(settings, make_request("add", queue="other")))] * 2, strict=True))
    assert plain == {"name": "add", "priority": "medium", "result_ttl": settings.result_ttl_seconds}
    full = shared_spec(settings, make_request("add", max_retries=0, timeout=10))
    assert dict(zip(*[iter(full)] * 2, strict=True))["max_retries"] == 0


def test_dumps_refuses_what_is_not_plain_json_naming_the_field() -> None:
    assert dumps([1, "é", {"a": None, "b": 1.5}], "args") == '[1,"é",{"a":null,"b":1.5}]'
    loop: list[object] = []
    loop.append(loop)
    for bad in (float("nan"), object(), {"k": {1, 2}}, loop):
        with pytest.raises(NotSerializable, match="args"):
            dumps(bad, "args")
