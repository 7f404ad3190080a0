"""Typed wrappers of the three schedule scripts (lua/schedule_update.lua, schedule_claim.lua,
schedule_outcome.lua). They take plain names and times, not the schedule model: the broker sits below
jobqueue.schedules, whose registry decides what to call and when."""

from __future__ import annotations

import enum

from jobqueue.broker.client import Client
from jobqueue.broker.redis_io import run_script
from jobqueue.broker.scripts import ScriptCall

# Claims outlive any scheduler's stale view by far; the forward-only due score is the real guard.
CLAIM_TTL_MS = 3_600_000


class ScheduleOp(enum.StrEnum):
    """What schedule_update.lua does (its ARGV[1])."""

    PUT = "put"
    PAUSE = "pause"
    RESUME = "resume"
    DELETE = "delete"
    CLEANUP = "cleanup"


class FireOutcome(enum.StrEnum):
    """What a claimed fire did (schedule_outcome.lua's ARGV[3])."""

    FIRED = "fired"
    SKIPPED = "skipped"
    FAILED = "failed"


def update_schedule(
    client: Client, op: ScheduleOp, name: str, *, spec: str = "", next_ms: int = 0, paused: str = ""
) -> bool:
    """Create / change (``spec``: definition JSON), pause, resume, delete or clean up one schedule
    atomically. False when the schedule does not exist (pause, resume, delete) or still does (cleanup)."""
    keys = client.global_keys
    call = ScriptCall(
        "schedule_update",
        (keys.schedules, keys.schedules_due, keys.schedule_state(name)),
        (op.value, name, spec, next_ms, paused),
    )
    return bool(run_script(client.redis, call))


def claim_fire(client: Client, name: str, fire_ms: int, *, next_ms: int, claimer: str, missed: int) -> bool:
    """Claim one fire time of a schedule and move its due time to ``next_ms``; True for exactly one of
    any number of schedulers making the same claim."""
    keys = client.global_keys
    call = ScriptCall(
        "schedule_claim",
        (
            keys.schedules_due,
            keys.schedule_state(name),
            keys.schedule_claim(name, fire_ms),
            keys.schedule_events,
        ),
        (name, fire_ms, next_ms, CLAIM_TTL_MS, claimer, missed, client.settings.events_max_length),
    )
    return bool(run_script(client.redis, call))


def record_fire_outcome(
    client: Client,
    name: str,
    fire_ms: int,
    outcome: FireOutcome,
    *,
    task_id: str = "",
    replaced: str = "",
    detail: str = "",
) -> None:
    """State and schedule-run event of a claimed fire, in one script call."""
    keys = client.global_keys
    call = ScriptCall(
        "schedule_outcome",
        (keys.schedule_state(name), keys.schedule_events),
        (name, fire_ms, outcome.value, task_id, replaced, detail, client.settings.events_max_length),
    )
    run_script(client.redis, call)
