"""translate_errors: the boundary between redis-py's exceptions and jobqueue's."""

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from jobqueue.broker.redis_io import translate_errors
from jobqueue.errors import BrokerUnavailable, JobQueueError, TaskNotFound

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("error", [RedisConnectionError("down"), RedisTimeoutError("slow"), OSError("reset")])
def test_connection_errors_become_broker_unavailable(error: Exception) -> None:
    with pytest.raises(BrokerUnavailable) as info, translate_errors():
        raise error
    assert info.value.__cause__ is error


def test_other_redis_errors_become_jobqueue_errors() -> None:
    error = ResponseError("WRONGTYPE")
    with pytest.raises(JobQueueError, match="Redis error: WRONGTYPE") as info, translate_errors():
        raise error
    assert not isinstance(info.value, BrokerUnavailable)
    assert info.value.__cause__ is error


def test_jobqueue_and_unrelated_errors_pass_through_and_nesting_works() -> None:
    with pytest.raises(TaskNotFound), translate_errors(), translate_errors():
        raise TaskNotFound("q.x")
    with pytest.raises(KeyError), translate_errors():
        raise KeyError("k")
    with translate_errors():
        value = 1
    assert value == 1
