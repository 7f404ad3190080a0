"""Task expiry, pure: the ``expires`` option (seconds from now, or a datetime) as an absolute time.

The time is decided where a task is fetched (lua/_lease.lua, docs/expiry.md); this module only validates
what a producer asks for. Relative expiry is taken on the producer's clock, as an absolute eta is.
"""

from __future__ import annotations

import datetime as dt
import math
import time

from jobqueue.errors import ValidationError

# The furthest a task may be scheduled ahead (countdown, eta or expires; broker.enqueue uses it too): a
# typo'd year must be refused, not kept in the delayed set for ever (and a datetime near year 9999 plus an
# offset overflows timestamp()).
MAX_DELAY_SECONDS = 10 * 365 * 86_400


def expiry_ms(expires: object, countdown: float | None = None, eta: dt.datetime | None = None) -> int:
    """``expires`` (seconds from now, or a datetime; naive = UTC) as unix ms. ValidationError('expires')
    when it is not in the future, too far ahead, or not after the task's eta / countdown (it could never
    run). Relative expiry is taken on the producer's clock, as an absolute eta is."""
    now = time.time()
    if isinstance(expires, dt.datetime):
        try:
            at = (expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)).timestamp()
        except (OverflowError, ValueError, OSError) as exc:
            raise ValidationError("expires", "is out of range") from exc
        if at <= now:
            raise ValidationError(
                "expires", f"is in the past ({expires.isoformat()}): the task could never run"
            )
    elif isinstance(expires, (int, float)) and not isinstance(expires, bool):
        if isinstance(expires, float) and not math.isfinite(expires):
            raise ValidationError("expires", "must be a number of seconds > 0 or a datetime")
        if expires <= 0:
            raise ValidationError("expires", "must be a number of seconds > 0 (or a future datetime)")
        if expires > MAX_DELAY_SECONDS:  # before float(): a huge int would overflow it
            raise ValidationError("expires", f"must be at most {MAX_DELAY_SECONDS} seconds in the future")
        at = now + float(expires)
    else:
        raise ValidationError("expires", "must be a number of seconds > 0 or a datetime")
    if at - now > MAX_DELAY_SECONDS:
        raise ValidationError("expires", f"must be at most {MAX_DELAY_SECONDS} seconds in the future")
    due = now + countdown if countdown else None
    if eta is not None:
        due = (eta if eta.tzinfo else eta.replace(tzinfo=dt.UTC)).timestamp()
    if due is not None and at <= due:
        raise ValidationError("expires", "must be after the task's eta / countdown: it could never run")
    return int(at * 1000)
