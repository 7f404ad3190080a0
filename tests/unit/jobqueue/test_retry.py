import random

import pytest

from jobqueue import ConfigurationError, RetryPolicy
from jobqueue.retry import base_delay, own_retry_policy


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("exponential", [1, 2, 4, 8, 16]),
        ("linear", [1, 2, 3, 4, 5]),
        ("fibonacci", [1, 1, 2, 3, 5]),
        ("constant", [1, 1, 1, 1, 1]),
    ],
)
def test_base_delays(policy: str, expected: list[int]) -> None:
    assert [base_delay(policy, n, 1.0) for n in range(1, 6)] == expected


def test_exponential_is_capped_at_300_seconds_by_default() -> None:
    policy = RetryPolicy(jitter=False)
    assert policy.delay(9) == 256
    assert policy.delay(10) == 300
    assert policy.delay(50) == 300


def test_jitter_stays_within_half_and_full_delay() -> None:
    policy = RetryPolicy()
    rng = random.Random(7)
    draws = [policy.delay(4, rng) for _ in range(200)]
    assert all(4 <= d <= 8 for d in draws)
    assert len(set(draws)) > 100


def test_callable_backoff() -> None:
    policy = RetryPolicy(backoff=lambda n: n * 10.0, jitter=False)
    assert policy.delay(3) == 30


def test_unknown_policy_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown retry_backoff"):
        RetryPolicy("quadratic")


def test_a_task_that_sets_no_backoff_has_no_policy_of_its_own() -> None:
    assert own_retry_policy(None, None, None, None) is None


def test_one_backoff_option_makes_a_whole_policy_with_the_other_defaults() -> None:
    assert own_retry_policy("linear", None, None, None) == RetryPolicy("linear", 1.0, 300.0, True)
    assert own_retry_policy(None, 0.5, None, False) == RetryPolicy("exponential", 0.5, 300.0, False)
