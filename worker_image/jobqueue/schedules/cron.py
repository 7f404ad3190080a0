"""Pure cron math: when a schedule fires, in its IANA time zone, across daylight-saving changes.

Expressions: 5 fields (minute hour day-of-month month day-of-week), 6 fields with seconds FIRST
(``*/10 * * * * *`` = every 10 seconds, as in Quartz, Spring, node-cron and BullMQ), or a shortcut
(@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly). croniter does the field matching on
wall-clock (naive local) time; this module maps wall-clock times to instants.

Daylight-saving semantics (those of ISC/Vixie cron, the ``cron(8)`` most systems run):

* A **fixed-time** schedule (neither the minute nor the hour field starts with ``*``; e.g. ``30 2 * * *``,
  ``@daily``) whose wall-clock time is **skipped** (spring forward, 02:00 -> 03:00) fires once, at the
  first instant after the gap (03:00 new time). When its wall-clock time is **repeated** (fall back,
  01:00-02:00 happens twice) it fires once, at the first occurrence.
* A **wildcard** schedule (``*/15 * * * *``, ``@hourly``, per-second schedules) follows the wall clock
  as it is: times inside a gap do not exist and do not fire; times in a repeated hour fire in both passes,
  so an every-15-minutes schedule keeps firing every 15 real minutes through the fall-back hour.

Transitions are found by probing the zone's UTC offset once a day and bisecting to the second; two
transitions within one day (none exist in current tzdata) would be seen as none.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from jobqueue.errors import ValidationError
from jobqueue.payloads import check_text

SHORTCUTS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_UTC = dt.UTC
_DAY = dt.timedelta(days=1)
_TICK = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class CronSpec:
    """A validated cron expression bound to a time zone."""

    expression: str  # as given (a shortcut stays a shortcut)
    fields: str  # the expanded fields croniter matches
    timezone: str
    has_seconds: bool
    fixed_time: bool  # Vixie cron's distinction, see the module docstring

    @property
    def zone(self) -> ZoneInfo:
        """The ZoneInfo of ``timezone`` (cached by zoneinfo)."""
        return ZoneInfo(self.timezone)


def parse_timezone(name: object) -> ZoneInfo:
    """A ZoneInfo for an IANA name; ValidationError('timezone') otherwise."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise ValidationError("timezone", f"{name!r} is not an IANA time zone name")
    check_text(name, "timezone")
    try:
        return ZoneInfo(name)
    # A tzdata folder ("America", "Etc") is found on disk but is a directory: OSError, not "not found".
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValidationError("timezone", f"{name!r} is not an IANA time zone name") from exc


def parse_cron(expression: object, timezone: str = "UTC") -> CronSpec:
    """Validate an expression and a zone; ValidationError('cron' | 'timezone') names what is wrong."""
    parse_timezone(timezone)
    if not isinstance(expression, str) or not expression.strip():
        raise ValidationError("cron", "must be a cron expression such as '0 2 * * *' or '@daily'")
    if len(expression) > 200:
        raise ValidationError("cron", "must be at most 200 characters")
    # Before croniter sees it: its errors quote the expression, and a lone surrogate quoted in an error
    # message cannot be sent back as UTF-8.
    check_text(expression, "cron")
    text = " ".join(expression.split())
    fields = SHORTCUTS.get(text.lower(), text)
    if fields.startswith("@"):
        raise ValidationError("cron", f"unknown shortcut {text!r}; use one of {', '.join(SHORTCUTS)}")
    parts = fields.split(" ")
    if len(parts) not in (5, 6):
        raise ValidationError("cron", f"{text!r} must have 5 fields (or 6 with seconds first)")
    # Random (R) and hashed (H) fields would let two schedulers compute different fire times.
    if any(c in fields.upper() for c in "RH"):
        raise ValidationError("cron", "random (R) and hashed (H) fields are not supported")
    has_seconds = len(parts) == 6
    try:
        croniter(fields, dt.datetime(2000, 1, 1), second_at_beginning=has_seconds)
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        raise ValidationError("cron", f"{text!r} is not a valid cron expression: {exc}") from exc
    minute, hour = (parts[1], parts[2]) if has_seconds else (parts[0], parts[1])
    return CronSpec(
        expression=text,
        fields=fields,
        timezone=timezone,
        has_seconds=has_seconds,
        fixed_time=not minute.startswith("*") and not hour.startswith("*"),
    )


def _offset(zone: ZoneInfo, instant: dt.datetime) -> dt.timedelta:
    offset = instant.astimezone(zone).utcoffset()
    return offset if offset is not None else dt.timedelta(0)


def _next_transition(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> dt.datetime | None:
    """The first instant in (start, end] at which the zone's UTC offset differs from that at ``start``."""
    base = _offset(zone, start)
    low = start
    while low < end:
        high = min(low + _DAY, end)
        if _offset(zone, high) != base:
            lo_s, hi_s = int(low.timestamp()), int(high.timestamp()) + (high.microsecond > 0)
            # Bisect whole seconds: tzdata transitions happen on whole seconds.
            while hi_s - lo_s > 1:
                mid = (lo_s + hi_s) // 2
                if _offset(zone, dt.datetime.fromtimestamp(mid, _UTC)) != base:
                    hi_s = mid
                else:
                    lo_s = mid
            return dt.datetime.fromtimestamp(hi_s, _UTC)
        low = high
    return None


def _next_wall(spec: CronSpec, wall: dt.datetime) -> dt.datetime:
    """The first matching wall-clock time strictly after ``wall`` (naive)."""
    try:
        result: dt.datetime = croniter(spec.fields, wall, second_at_beginning=spec.has_seconds).get_next(
            dt.datetime
        )
    except CroniterBadDateError as exc:
        raise ValidationError("cron", f"{spec.expression!r} never fires") from exc
    return result


def next_fire(spec: CronSpec, after: dt.datetime) -> dt.datetime:
    """The first fire instant strictly after ``after`` (aware), as an aware UTC datetime."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    zone = spec.zone
    start = after.astimezone(_UTC)
    # Walk segments of constant UTC offset: inside one, wall time = instant + offset is monotonic.
    local = start.astimezone(zone)
    search_from = local.replace(tzinfo=None)  # wall time; matches must be after it
    if spec.fixed_time and local.fold == 1:
        # Inside the second pass of a repeated hour: fixed-time schedules already fired in the first.
        previous = _next_transition(zone, start - _DAY, start)
        if previous is not None:
            end_of_repeat = (previous + _offset(zone, start - _DAY)).replace(tzinfo=None)
            search_from = max(search_from, end_of_repeat - _TICK)
    seg_start = start
    for _ in range(1000):
        offset = _offset(zone, seg_start)
        wall = _next_wall(spec, search_from)
        candidate = (wall - offset).replace(tzinfo=_UTC)
        transition = _next_transition(zone, seg_start, candidate)
        if transition is None:
            return candidate
        new_offset = _offset(zone, transition)
        old_wall_at_transition = (transition + offset).replace(tzinfo=None)
        new_wall_at_transition = (transition + new_offset).replace(tzinfo=None)
        if new_offset > offset:
            # A gap: wall times in [old, new) do not exist today.
            if spec.fixed_time and transition > start:
                skipped = _next_wall(spec, max(search_from, old_wall_at_transition - _TICK))
                if skipped < new_wall_at_transition:
                    return transition
            search_from = new_wall_at_transition - _TICK
        elif spec.fixed_time:
            # A repeated hour: fixed-time schedules fired in the first pass; resume after it.
            search_from = max(search_from, old_wall_at_transition - _TICK)
        else:
            search_from = new_wall_at_transition - _TICK
        seg_start = transition
    raise ValidationError("cron", f"{spec.expression!r}: no fire time found")


def fires_between(
    spec: CronSpec, after: dt.datetime, until: dt.datetime, limit: int = 1000
) -> list[dt.datetime]:
    """Fire instants in (after, until], at most ``limit`` (the earliest ones)."""
    out: list[dt.datetime] = []
    current = after
    while len(out) < limit:
        current = next_fire(spec, current)
        if current > until:
            break
        out.append(current)
    return out


def shortest_interval(spec: CronSpec, after: dt.datetime, samples: int = 64) -> float:
    """The shortest gap in seconds between consecutive fires among the next ``samples`` + 1 fires after
    ``after``: enough to see a cron's densest stretch within its hour or day (``0,1 * * * *`` fires one
    minute apart, then 59), at a bounded cost."""
    fires = [next_fire(spec, after)]
    for _ in range(samples):
        fires.append(next_fire(spec, fires[-1]))
    return min((b - a).total_seconds() for a, b in itertools.pairwise(fires))
