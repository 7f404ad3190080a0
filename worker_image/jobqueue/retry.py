"""Retry backoff policies: pure functions of the attempt number, with jitter drawn from an injected RNG."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from jobqueue.errors import ConfigurationError

BackoffFunction = Callable[[int], float]

BACKOFF_NAMES = ("exponential", "linear", "fibonacci", "constant")


def _fibonacci(n: int) -> int:
    a, b = 1, 1
    for _ in range(n - 1):
        a, b = b, a + b
    return a


def base_delay(policy: str, retry_number: int, base: float) -> float:
    """Delay before retry ``retry_number`` (1-based) without jitter or cap.

    exponential: base, 2·base, 4·base, ...; linear: base, 2·base, 3·base; fibonacci: 1, 1, 2, 3, 5 x base;
    constant: base every time.
    """
    if retry_number < 1:
        raise ValueError("retry_number starts at 1")
    if policy == "exponential":
        return base * float(2 ** (retry_number - 1))
    if policy == "linear":
        return base * retry_number
    if policy == "fibonacci":
        return base * _fibonacci(retry_number)
    if policy == "constant":
        return base
    raise ConfigurationError(f"unknown retry_backoff {policy!r}; use one of {', '.join(BACKOFF_NAMES)}")


class QueueDefaultRetry:
    """Marks a task that set no backoff of its own: the fail script computes the delay from its queue's
    retry defaults (``QueueAdmin.set_retry_defaults``), else from the built-in ``RetryPolicy()``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "QUEUE_DEFAULT_RETRY"


QUEUE_DEFAULT_RETRY = QueueDefaultRetry()


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before each retry.

    ``backoff`` is a policy name or a callable ``f(retry_number) -> seconds``. Jitter ("full jitter"
    scaled to [50%, 100%] of the delay) spreads retries of many tasks that failed together, so they do
    not hit a recovering dependency at the same instant.
    """

    backoff: str | BackoffFunction = "exponential"
    base_seconds: float = 1.0
    max_seconds: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.backoff, str) and self.backoff not in BACKOFF_NAMES:
            raise ConfigurationError(
                f"unknown retry_backoff {self.backoff!r}; use one of {', '.join(BACKOFF_NAMES)}"
            )
        if self.base_seconds < 0 or self.max_seconds < 0:
            raise ConfigurationError("retry delays must not be negative")
        if self.base_seconds > self.max_seconds:
            raise ConfigurationError("retry_base must not exceed retry_max")

    def delay(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based), capped and jittered."""
        if callable(self.backoff):
            raw = float(self.backoff(retry_number))
        else:
            raw = base_delay(self.backoff, retry_number, self.base_seconds)
        capped = max(0.0, min(raw, self.max_seconds))
        if not self.jitter or capped == 0:
            return capped
        draw = (rng or random).random()
        return capped * (0.5 + 0.5 * draw)


def own_retry_policy(
    backoff: str | BackoffFunction | None,
    base: float | None,
    cap: float | None,
    jitter: bool | None,
) -> RetryPolicy | None:
    """The task's own backoff policy when it sets any of its parts (the rest take RetryPolicy's
    defaults), else None: its queue's default applies."""
    if backoff is None and base is None and cap is None and jitter is None:
        return None
    default = RetryPolicy()
    return RetryPolicy(
        default.backoff if backoff is None else backoff,
        default.base_seconds if base is None else base,
        default.max_seconds if cap is None else cap,
        default.jitter if jitter is None else jitter,
    )
