"""The storable-payload rule at the Python client's boundaries (sync, async, batch, workflows) on a real
Redis: refused before anything is written, the error naming the path (issue 15: defects 1, 4, 6)."""

from __future__ import annotations

import asyncio
import dataclasses

import jq_test_app
import pytest

from jobqueue import Client, Settings, TaskStatus, ValidationError
from jobqueue.broker.aio import AsyncClient
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.workflows import submit
from jobqueue.canvas import chain

pytestmark = pytest.mark.timeout(30)


def nothing_written(client: Client) -> bool:
    return client.known_queues() == [] and not client.redis.keys(f"{client.settings.key_prefix}:*")


def test_enqueue_refuses_unstorable_args_and_writes_nothing(client: Client) -> None:
    with pytest.raises(ValidationError) as info:
        client.enqueue("add", [1, {"name": "bad \udc80"}])
    assert info.value.field == "args[1].name"
    with pytest.raises(ValidationError) as info:
        client.enqueue("add", kwargs={"x": "a\x00b"})
    assert info.value.field == "kwargs.x"
    assert nothing_written(client)


def test_a_batch_is_all_or_nothing_and_names_the_request(client: Client) -> None:
    ok = [make_request("add", [1, 2], queue="q1")] * 3
    with pytest.raises(ValidationError) as info:
        client.enqueue_many([*ok, make_request("add", ["\ud800"], queue="q2")])
    assert (info.value.index, info.value.field) == (3, "args[0]")
    orphan = make_request("add", depends_on=["q1.0190a1b2c3d47e8f9a0b1c2d3e4f5a6b"])
    with pytest.raises(ValidationError) as info:
        client.enqueue_many([*ok, orphan])
    assert (info.value.index, info.value.field) == (3, "depends_on")
    assert nothing_written(client)  # defect 6: the first three used to be written and run


def test_a_parent_created_earlier_in_the_batch_is_not_missing(client: Client) -> None:
    parent_id = "default.0190a1b2c3d47e8f9a0b1c2d3e4f5a6b"
    parent = dataclasses.replace(make_request("add", [1, 2]), task_id=parent_id)
    first, second = client.enqueue_many([parent, make_request("add", [3, 4], depends_on=[parent_id])])
    assert first.id == parent_id
    assert client.get_task(second.id).status == TaskStatus.PENDING


def test_the_async_client_refuses_the_same(settings: Settings, client: Client) -> None:
    async def run() -> None:
        aio = AsyncClient(settings)
        try:
            with pytest.raises(ValidationError) as info:
                await aio.enqueue("add", ["ok", ["\x00"]])
            assert info.value.field == "args[1][0]"
            with pytest.raises(ValidationError) as info:
                await aio.enqueue_many([make_request("add"), make_request("add", kwargs={"k\ud800": 1})])
            assert (info.value.index, info.value.field) == (1, "kwargs")
        finally:
            await aio.close()

    asyncio.run(run())
    assert nothing_written(client)


def test_a_workflow_is_refused_whole(client: Client) -> None:
    add = jq_test_app.add
    with pytest.raises(ValidationError) as info:
        submit(client, chain(add.s(1, 1), add.s("\ud800")))
    assert info.value.field == "args[0]"
    assert nothing_written(client)
