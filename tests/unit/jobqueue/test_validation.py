import dataclasses
import datetime as dt

import pytest

from jobqueue import JobQueueError, PayloadTooLarge, Priority, Settings, ValidationError
from jobqueue.broker.enqueue import EnqueueRequest, make_request
from jobqueue.broker.enqueue_call import build_enqueue
from jobqueue.keys import new_task_id, new_task_ids, queue_of
from jobqueue.models import parse_priority


def test_task_ids_carry_their_queue_and_sort_by_time() -> None:
    ids = [new_task_id("emails") for _ in range(50)]
    assert all(queue_of(i) == "emails" for i in ids)
    assert len(set(ids)) == 50
    assert ids[0][:20] <= ids[-1][:20]


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "dots.not.allowed", "{tag}"])
def test_bad_queue_names(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_request("t", queue=bad)
    assert info.value.field == "queue"


@pytest.mark.parametrize("bad", ["nope", "default", "not-an-id.zzz"])
def test_bad_task_ids(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        queue_of(bad)
    assert info.value.field == "task_id"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"countdown": -1}, "countdown"),
        ({"countdown": float("nan")}, "countdown"),
        ({"countdown": 1, "eta": dt.datetime.now(dt.UTC)}, "countdown"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 5, "soft_timeout": 5}, "soft_timeout"),
        ({"result_ttl": 0}, "result_ttl"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_request("t", **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert isinstance(info.value, JobQueueError)


def test_args_must_be_json() -> None:
    with pytest.raises(ValidationError) as info:
        build_enqueue(Settings(), make_request("t", [{1, 2}]))
    assert info.value.field == "args"
    with pytest.raises(ValidationError) as info:
        build_enqueue(Settings(), make_request("t", [], {"x": float("inf")}))
    assert info.value.field == "kwargs"


def test_args_must_be_a_list_and_kwargs_an_object() -> None:
    with pytest.raises(ValidationError, match="args"):
        make_request("t", "abc")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="kwargs"):
        make_request("t", [], {1: 2})  # type: ignore[dict-item]


def test_oversized_payload() -> None:
    settings = Settings(max_payload_bytes=100)
    with pytest.raises(PayloadTooLarge):
        build_enqueue(settings, make_request("t", ["x" * 200]))


def test_priority_names() -> None:
    assert parse_priority("HIGH") is Priority.HIGH
    assert parse_priority(Priority.LOW) is Priority.LOW


def test_soft_timeout_defaults_to_80_percent() -> None:
    _, call = build_enqueue(Settings(), make_request("t", timeout=10))
    position = call.args.index("soft_timeout")
    assert float(call.args[position + 1]) == 8.0


def test_task_ids_have_the_uuid7_version_and_variant_bits() -> None:
    batch = new_task_ids(["q", "other"] * 100)
    for task_id in [new_task_id("q") for _ in range(200)] + batch:
        suffix = int(task_id.rpartition(".")[2], 16)
        assert (suffix >> 76) & 0xF == 7
        assert (suffix >> 62) & 0b11 == 0b10


def test_batch_task_ids_are_unique_ids_of_their_queues_in_order() -> None:
    queues = ["emails", "reports", "emails"] * 50
    ids = new_task_ids(queues)
    assert [queue_of(i) for i in ids] == queues
    assert len(set(ids)) == len(queues)
    assert new_task_ids([]) == []
    # The same layout as one-by-one ids: same time prefix length, same alphabet.
    single = new_task_id("emails")
    assert {len(i) for i in ids if i.startswith("emails.")} == {len(single)}
    assert ids[0][: len("emails.") + 8] <= single[: len("emails.") + 8]


def test_make_request_sets_every_field_like_the_dataclass() -> None:
    # make_request stores the fields without EnqueueRequest.__init__ (speed): it must still set each one.
    request = make_request("t", (1,), {"a": 1}, queue="q", priority="high", countdown=2.5, max_retries=3)
    assert set(vars(request)) == {f.name for f in dataclasses.fields(EnqueueRequest)}
    assert request == EnqueueRequest(
        "t", [1], {"a": 1}, "q", Priority.HIGH, countdown=2.5, max_retries=3, depends_on=()
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("bad", [["a"], None, 3, ("q",)])
def test_a_queue_that_is_not_a_string_is_a_validation_error(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        make_request("t", queue=bad)  # type: ignore[arg-type]
    assert info.value.field == "queue"


def test_kwargs_with_non_string_keys_or_not_a_mapping() -> None:
    for bad in ({1: "x"}, [("a", 1)], "ab"):
        with pytest.raises(ValidationError) as info:
            make_request("t", kwargs=bad)  # type: ignore[arg-type]
        assert info.value.field == "kwargs"
