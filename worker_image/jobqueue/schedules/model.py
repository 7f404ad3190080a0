"""Pure model of recurring schedules: definition, validation, JSON, and which fire times to run or skip.

Missed-fire semantics (``starting_deadline_seconds``, in the spirit of a Kubernetes CronJob):

* Every due fire time is handled once, by whichever scheduler claims it.
* A fire time more than ``starting_deadline_seconds`` in the past when a scheduler gets to it is skipped
  and counted as missed (the scheduler was down or far behind).
* Without a deadline every due fire time runs (a short scheduler outage is caught up), but never more than
  ``MAX_CATCH_UP`` at once: beyond that only the most recent one runs and the rest count as missed (the
  Kubernetes controller gives up past 100 missed start times for the same reason).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

from jobqueue.errors import ScheduleCorrupt, ValidationError
from jobqueue.keys import validate_queue_name
from jobqueue.models import Priority, parse_priority
from jobqueue.payloads import check_encoded, check_text, find_unstorable
from jobqueue.schedules.cron import CronSpec, fires_between, next_fire, parse_cron
from jobqueue.serialization import dumps

SCHEDULE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")  # fullmatch: "$" accepts a trailing newline
# Who owns a schedule: registered over the API / ScheduleRegistry, or declared in code with @app.periodic
# (synced by the scheduler at start: jobqueue/schedules/code.py).
SOURCE_API = "api"
SOURCE_CODE = "code"
MAX_CATCH_UP = 100
_TICK = dt.timedelta(microseconds=1)
_LOOKBACK = (
    dt.timedelta(minutes=1),
    dt.timedelta(hours=1),
    dt.timedelta(days=1),
    dt.timedelta(days=32),
    dt.timedelta(days=367),
)


class ConcurrencyPolicy(enum.StrEnum):
    """What a fire does while the previous fire's task is not final yet (as a Kubernetes CronJob)."""

    ALLOW = "Allow"  # run anyway
    FORBID = "Forbid"  # skip this fire (counted as skipped)
    REPLACE = "Replace"  # cancel the previous task (force), then run


@dataclass(frozen=True)
class Schedule:
    """A validated recurring schedule definition."""

    name: str
    cron: str
    task: str
    timezone: str = "UTC"
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    priority: Priority = Priority.MEDIUM
    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.ALLOW
    starting_deadline_seconds: float | None = None
    source: str = SOURCE_API  # absent in definitions stored before sources existed: they were API ones
    orphaned: bool = False  # a code schedule no longer declared by the code a scheduler started with

    @property
    def cron_spec(self) -> CronSpec:
        """The parsed cron expression in the schedule's zone."""
        return parse_cron(self.cron, self.timezone)

    def to_json(self) -> str:
        """The definition as stored in Redis."""
        return json.dumps(
            {
                "name": self.name, "cron": self.cron, "task": self.task, "timezone": self.timezone,
                "args": self.args, "kwargs": self.kwargs, "queue": self.queue,
                "priority": self.priority.value, "concurrency_policy": self.concurrency_policy.value,
                "starting_deadline_seconds": self.starting_deadline_seconds,
                "source": self.source, "orphaned": self.orphaned,
            },
            separators=(",", ":"),
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str, name: str) -> Schedule:
        """Inverse of to_json; ScheduleCorrupt (naming the schedule ``name``) when ``text`` is not one."""
        try:
            data = json.loads(text)
            # Written before payloads were checked at registration: a NUL or lone surrogate read back
            # would fail every fire and every listing, so the schedule reads as corrupt instead.
            unstorable = find_unstorable(data, "schedule")
            if unstorable is not None:
                raise ValueError(" ".join(unstorable))
            return cls(
                **{
                    **data,
                    "priority": Priority(data["priority"]),
                    "concurrency_policy": ConcurrencyPolicy(data["concurrency_policy"]),
                }
            )
        except (ValueError, KeyError, TypeError) as exc:  # JSON and enum errors are ValueErrors
            # A cron or zone that no longer parses is not checked here: the schedule stays listed (with
            # its counters) and each fire attempt logs the ValidationError.
            raise ScheduleCorrupt(name, str(exc)) from exc


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule with its run state, as listed by ``app.schedules.list()``."""

    schedule: Schedule
    paused: bool
    next_fire_at: dt.datetime | None  # None while paused
    last_fire_at: dt.datetime | None
    last_task_id: str | None
    fired: int
    missed: int
    skipped: int


class ScheduleOptions(TypedDict, total=False):
    """Options of one schedule besides its name, cron and task; shared by make_schedule and
    ScheduleRegistry.register so the two signatures cannot drift apart."""

    timezone: str
    args: Sequence[Any] | None
    kwargs: Mapping[str, Any] | None
    queue: str
    priority: Priority | str
    concurrency_policy: ConcurrencyPolicy | str
    starting_deadline_seconds: float | None
    source: str
    orphaned: bool


def make_schedule(name: str, *, cron: str, task: str, **options: Unpack[ScheduleOptions]) -> Schedule:
    """Validate a schedule definition; every problem is a ValidationError naming the field."""
    timezone = options.get("timezone", "UTC")
    args = options.get("args")
    kwargs = options.get("kwargs")
    queue = options.get("queue", "default")
    priority = options.get("priority", Priority.MEDIUM)
    concurrency_policy = options.get("concurrency_policy", ConcurrencyPolicy.ALLOW)
    deadline = options.get("starting_deadline_seconds")
    source = options.get("source", SOURCE_API)
    if source not in (SOURCE_API, SOURCE_CODE):
        raise ValidationError("source", f"must be {SOURCE_API!r} or {SOURCE_CODE!r}")
    if not isinstance(name, str) or not SCHEDULE_NAME.fullmatch(name):
        raise ValidationError("name", "must be 1-128 characters of letters, digits, '_', '-' or '.'")
    parse_cron(cron, timezone)
    if not isinstance(task, str) or not task or len(task) > 200:
        raise ValidationError("task", "must be a task name (a non-empty string of at most 200 characters)")
    validate_queue_name(queue)
    if args is None:
        args = []
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise ValidationError("args", "must be a list")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ValidationError("kwargs", "must be an object with string keys")
    check_encoded(list(args), dumps(list(args), "args"), "args")
    check_encoded(dict(kwargs), dumps(dict(kwargs), "kwargs"), "kwargs")
    check_text(task, "task")
    try:
        policy = ConcurrencyPolicy(concurrency_policy)
    except ValueError as exc:
        raise ValidationError(
            "concurrency_policy", f"{concurrency_policy!r} is not one of Allow, Forbid, Replace"
        ) from exc
    if deadline is not None and (
        not isinstance(deadline, (int, float))
        or isinstance(deadline, bool)
        or math.isnan(deadline)
        or not 0 < deadline < 10**9
    ):
        raise ValidationError("starting_deadline_seconds", "must be a number of seconds > 0, or None")
    return Schedule(
        name=name,
        cron=" ".join(cron.split()),
        task=task,
        timezone=timezone,
        args=list(args),
        kwargs=dict(kwargs),
        queue=queue,
        priority=parse_priority(priority),
        concurrency_policy=policy,
        starting_deadline_seconds=None if deadline is None else float(deadline),
        source=source,
        orphaned=bool(options.get("orphaned", False)),
    )


def fire_task_id(queue: str, schedule_name: str, fire_ms: int) -> str:
    """The task id of one fire: deterministic, so even two enqueues of the same fire create one task
    (enqueue is idempotent per id). UUIDv7 layout with the fire time as its timestamp."""
    digest = hashlib.sha256(f"{schedule_name}|{fire_ms}".encode()).digest()
    rand = int.from_bytes(digest[:10], "big")
    ms = fire_ms & ((1 << 48) - 1)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return f"{queue}.{value:032x}"


def to_ms(instant: dt.datetime) -> int:
    """Unix milliseconds of an aware datetime."""
    return round(instant.timestamp() * 1000)


def from_ms(ms: int | float) -> dt.datetime:
    """Aware UTC datetime of unix milliseconds."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


@dataclass(frozen=True)
class FirePlan:
    """What to do with a due schedule: ``missed`` fires skipped as a group (claimed at ``missed_from``),
    then each fire time in ``run`` handled in order; ``next_after`` maps each fire to the next one."""

    missed: int
    missed_from: int | None
    run: list[int]
    next_after: dict[int, int]


def _latest_at_or_before(spec: CronSpec, now: dt.datetime) -> dt.datetime | None:
    for window in _LOOKBACK:
        fires = fires_between(spec, now - window, now, limit=10_000)
        if fires:
            return fires[-1]
    return None


def plan_fires(
    spec: CronSpec, first_due_ms: int, now: dt.datetime, deadline_seconds: float | None
) -> FirePlan:
    """Decide, for a schedule whose next fire time ``first_due_ms`` has come, which fires run and how many
    are missed (see the module docstring)."""
    first_due = from_ms(first_due_ms)
    missed = 0
    missed_from: int | None = None
    start = first_due - _TICK
    if deadline_seconds is not None:
        horizon = now - dt.timedelta(seconds=deadline_seconds)
        if horizon > first_due:
            # Count what the deadline drops (bounded: past 10 000 the exact number stops mattering).
            missed = len(fires_between(spec, first_due - _TICK, horizon - _TICK, limit=10_000))
            missed_from = first_due_ms if missed else None
            start = max(start, horizon - _TICK)
    due = fires_between(spec, start, now, limit=MAX_CATCH_UP + 1)
    if len(due) > MAX_CATCH_UP:
        latest = _latest_at_or_before(spec, now)
        missed += MAX_CATCH_UP
        missed_from = missed_from if missed_from is not None else first_due_ms
        due = [latest] if latest is not None else []
    run = [to_ms(f) for f in due]
    next_after = {f: to_ms(next_fire(spec, from_ms(f))) for f in run}
    return FirePlan(missed, missed_from, run, next_after)


def first_run_after_missed(plan: FirePlan, spec: CronSpec, now: dt.datetime) -> int:
    """Where the due score moves once the missed group is claimed: the first fire to run, else the next
    fire after now."""
    if plan.run:
        return plan.run[0]
    return to_ms(next_fire(spec, now))
