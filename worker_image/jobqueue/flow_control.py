"""Pure flow-control model: the values of a queue's live configuration and the validation of what an
admin asks for.

The configuration lives in the queue's config hash and is enforced by ``lua/fetch.lua`` (flow control),
``lua/fail.lua`` (retry defaults) and ``lua/recover.lua`` (max lost leases). This module holds the values
(rate limit, priority policy, retry defaults, ``QueueConfig``) and refuses a bad one with a ValidationError
naming the field; ``queue_config_hash.py`` encodes them as hash fields and decodes the hash, and
``rate_limit_stats.py`` derives statistics from the GCRA state. No I/O here (``queue_admin.py`` does that).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from jobqueue.errors import ValidationError
from jobqueue.models import Priority
from jobqueue.retry import BACKOFF_NAMES

# The longest a queue may let a task wait before it expires (its F_EXPIRES_MS, queue_config_hash.py).
MAX_QUEUE_EXPIRES_SECONDS = 365 * 86_400

DEFAULT_WEIGHTS = (6, 3, 1)
_MAX_PERIOD_MS = 31 * 86_400_000  # a month; longer periods are better served by a schedule
_MAX_RETRY_DELAY_SECONDS = 7 * 86_400  # a week; the delayed set holds a retry that long at most


class PriorityPolicy(enum.StrEnum):
    """How fetch picks between the high / medium / low ready lists."""

    STRICT = "strict"  # high drains before medium before low
    WEIGHTED = "weighted"  # a rotation over weights (e.g. 6:3:1): low is never starved


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` task starts per ``period_seconds`` across all workers; ``burst`` may start back
    to back (GCRA: one start per ``period_seconds / limit`` on average)."""

    limit: int
    period_seconds: float
    burst: int = 1
    enabled: bool = True

    @property
    def per_second(self) -> float:
        """The steady-state rate in tasks per second."""
        return self.limit / self.period_seconds

    @property
    def interval_ms(self) -> float:
        """Milliseconds between two starts at the steady rate."""
        return self.period_seconds * 1000 / self.limit


@dataclass(frozen=True)
class RetryDefaults:
    """What a task of the queue that set no retry policy of its own gets: up to ``max_retries`` retries,
    ``backoff`` (exponential, linear, fibonacci, constant) from ``base_seconds``, capped at
    ``max_seconds``, jittered to 50..100 % of the delay when ``jitter``. Resolved when a task fails, so a
    change applies to tasks already waiting."""

    max_retries: int
    backoff: str = "exponential"
    base_seconds: float = 1.0
    max_seconds: float = 300.0
    jitter: bool = True


@dataclass(frozen=True)
class QueueConfig:
    """The live configuration of one queue: flow control, retry defaults, dead-letter threshold."""

    queue: str
    paused: bool
    max_in_flight: int | None
    rate_limit: RateLimit | None
    priority_policy: PriorityPolicy
    weights: tuple[int, int, int] | None
    retry_defaults: RetryDefaults | None = None
    max_lost_leases: int | None = None  # None: the process-wide JOBQUEUE_MAX_LOST_LEASES
    expires_seconds: float | None = None  # None: tasks wait for ever unless they set their own expires
    # Each level's own limit, beside ``rate_limit`` (a start counts against both); absent = none.
    priority_rate_limits: dict[Priority, RateLimit] = field(default_factory=dict)


def _positive_int(field: str, value: object, maximum: int = 10**9) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise ValidationError(field, f"must be a whole number between 1 and {maximum}, got {value!r}")
    return value


def _period_ms(value: object) -> int:
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise ValidationError("period", f"must be seconds (a number) or a timedelta, got {value!r}")
    if math.isnan(seconds) or not 0.001 <= seconds <= _MAX_PERIOD_MS / 1000:
        raise ValidationError("period", "must be between 1 ms and 31 days")
    return round(seconds * 1000)


class RateForms(TypedDict, total=False):
    """The ways of stating a rate that ``make_rate_limit`` takes (one of them), for methods that pass
    them on."""

    max_tasks_per_second: int | None
    max_tasks_per_minute: int | None
    max_tasks_per_hour: int | None
    limit: int | None
    period: float | dt.timedelta | None
    burst: int


def make_rate_limit(
    *,
    max_tasks_per_second: int | None = None,
    max_tasks_per_minute: int | None = None,
    max_tasks_per_hour: int | None = None,
    limit: int | None = None,
    period: float | dt.timedelta | None = None,
    burst: int = 1,
    enabled: bool = True,
) -> RateLimit:
    """Validate one way of stating a rate (per second / minute / hour, or ``limit`` per ``period``)."""
    forms = {
        "max_tasks_per_second": (max_tasks_per_second, 1000),
        "max_tasks_per_minute": (max_tasks_per_minute, 60_000),
        "max_tasks_per_hour": (max_tasks_per_hour, 3_600_000),
    }
    given = [name for name, (value, _) in forms.items() if value is not None]
    if limit is not None or period is not None:
        given.append("limit")
    if len(given) != 1:
        raise ValidationError(
            "rate_limit",
            "give exactly one of max_tasks_per_second, max_tasks_per_minute, max_tasks_per_hour "
            "or limit with period",
        )
    if given[0] == "limit":
        if limit is None or period is None:
            raise ValidationError("period" if period is None else "limit", "limit and period go together")
        count, period_ms = _positive_int("limit", limit), _period_ms(period)
    else:
        value, period_ms = forms[given[0]]
        count = _positive_int(given[0], value)
    if not isinstance(enabled, bool):
        raise ValidationError("enabled", "must be True or False")
    return RateLimit(count, period_ms / 1000, _positive_int("burst", burst, 10**6), enabled)


def validate_max_in_flight(value: int | None) -> int | None:
    """None or 0 removes the limit; otherwise a whole number >= 1."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value == 0):
        return None
    return _positive_int("max_in_flight", value, 10**6)


def validate_policy(
    policy: PriorityPolicy | str, weights: Sequence[int] | None
) -> tuple[PriorityPolicy, tuple[int, int, int] | None]:
    """The policy and, for 'weighted', three non-negative whole weights (high, medium, low), sum > 0."""
    try:
        parsed = PriorityPolicy(policy)
    except ValueError as exc:
        raise ValidationError("policy", f"{policy!r} is not 'strict' or 'weighted'") from exc
    if parsed == PriorityPolicy.STRICT:
        if weights is not None:
            raise ValidationError("weights", "weights apply only to the 'weighted' policy")
        return parsed, None
    chosen = tuple(weights) if weights is not None else DEFAULT_WEIGHTS
    if len(chosen) != 3 or not all(
        isinstance(w, int) and not isinstance(w, bool) and 0 <= w <= 1000 for w in chosen
    ):
        raise ValidationError("weights", "must be three whole numbers 0..1000 for high, medium, low")
    if sum(chosen) == 0:
        raise ValidationError("weights", "at least one weight must be > 0")
    return parsed, (chosen[0], chosen[1], chosen[2])


def _delay_seconds(field: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise ValidationError(field, f"must be a number of seconds, got {value!r}")
    if not 0 <= value <= _MAX_RETRY_DELAY_SECONDS:
        raise ValidationError(field, f"must be between 0 and {_MAX_RETRY_DELAY_SECONDS} seconds")
    return float(value)


class RetryBackoffOptions(TypedDict, total=False):
    """The backoff part of a queue's retry defaults; shared by make_retry_defaults and
    QueueAdmin.set_retry_defaults so the two signatures cannot drift apart."""

    backoff: str  # exponential | linear | constant (default exponential)
    base_seconds: float  # default 1
    max_seconds: float  # default 300
    jitter: bool  # default True


def make_retry_defaults(*, max_retries: int, **options: Unpack[RetryBackoffOptions]) -> RetryDefaults:
    """Validate a queue's retry defaults; every problem is a ValidationError naming the field."""
    backoff = options.get("backoff", "exponential")
    base_seconds = options.get("base_seconds", 1.0)
    max_seconds = options.get("max_seconds", 300.0)
    jitter = options.get("jitter", True)
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or not 0 <= max_retries <= 1000:
        raise ValidationError("max_retries", "must be a whole number between 0 and 1000")
    if backoff not in BACKOFF_NAMES:
        raise ValidationError("backoff", f"{backoff!r} is not one of {', '.join(BACKOFF_NAMES)}")
    if not isinstance(jitter, bool):
        raise ValidationError("jitter", "must be True or False")
    base = _delay_seconds("base_seconds", base_seconds)
    cap = _delay_seconds("max_seconds", max_seconds)
    if base > cap:
        # Every delay would be the cap: almost certainly the two values swapped.
        raise ValidationError("base_seconds", f"must not exceed max_seconds ({cap})")
    return RetryDefaults(max_retries, backoff, base, cap, jitter)


def validate_queue_expires(value: float | None) -> int | None:
    """None (no queue expiry) or seconds in (0, a year] as whole milliseconds (at least 1)."""
    if value is None:
        return None
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or math.isnan(value)
        or not 0 < value <= MAX_QUEUE_EXPIRES_SECONDS
    ):
        raise ValidationError(
            "expires", f"must be a number of seconds > 0 and <= {MAX_QUEUE_EXPIRES_SECONDS}"
        )
    return max(1, round(value * 1000))


def validate_max_lost_leases(value: int | None) -> int | None:
    """None (the process-wide default applies) or a whole number 0..1000: a task whose lease is lost
    more often than this is dead-lettered as poison."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000:
        raise ValidationError("max_lost_leases", "must be a whole number between 0 and 1000")
    return value
