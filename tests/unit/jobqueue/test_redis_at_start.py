"""build_when_redis_answers: retried with backoff for a bounded time, never for a refused password."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from jobqueue.errors import BrokerUnavailable
from jobqueue.worker.health import LivenessFile
from jobqueue.worker.redis_at_start import MAX_DELAY_SECONDS, build_when_redis_answers


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(times: int, cause: Exception) -> tuple[list[int], Callable[[], str]]:
    calls = [0]

    def build() -> str:
        calls[0] += 1
        if calls[0] <= times:
            raise BrokerUnavailable(f"Redis unavailable: {cause}") from cause
        return "worker"

    return calls, build


def test_it_retries_with_growing_delays_until_redis_answers(tmp_path: Path) -> None:
    fake = FakeTime()
    calls, build = failing(8, RedisConnectionError("Connection refused"))
    liveness = LivenessFile(str(tmp_path), "w1")
    assert build_when_redis_answers(build, liveness, 120, fake.clock, fake.sleep) == "worker"
    assert calls[0] == 9
    assert fake.sleeps == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, MAX_DELAY_SECONDS, MAX_DELAY_SECONDS]
    assert (tmp_path / "w1").exists()  # alive while it waited: the probe must not restart it


def test_it_gives_up_at_the_deadline_and_forgets_its_liveness_file(tmp_path: Path) -> None:
    fake = FakeTime()
    _, build = failing(1000, RedisConnectionError("Connection refused"))
    liveness = LivenessFile(str(tmp_path), "w1")
    with pytest.raises(BrokerUnavailable, match="Connection refused"):
        build_when_redis_answers(build, liveness, 10, fake.clock, fake.sleep)
    assert fake.now == pytest.approx(10)  # the last sleep is cut to the deadline
    assert not (tmp_path / "w1").exists()


def test_zero_and_a_refused_password_fail_at_once(tmp_path: Path) -> None:
    for wait, cause in ((0.0, RedisConnectionError("refused")), (120.0, AuthenticationError("bad password"))):
        fake = FakeTime()
        calls, build = failing(1000, cause)
        with pytest.raises(BrokerUnavailable):
            build_when_redis_answers(build, LivenessFile(str(tmp_path), "w"), wait, fake.clock, fake.sleep)
        assert (calls[0], fake.sleeps) == (1, [])
