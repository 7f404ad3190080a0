"""``app.schedules``: recurring schedules stored in Redis, and the firing step the scheduler runs.

Definitions live in one hash, active schedules in a zset scored by their next fire time. Any number of
schedulers may call ``fire_due_schedules``: each fire time is claimed by ``lua/schedule_claim.lua`` (a
SET NX key per schedule and fire time, plus a due score that only moves forward), and the task a fire
creates has an id derived from the schedule and fire time, so a fire can never create two tasks.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Unpack

from jobqueue.broker.client import Client
from jobqueue.broker.enqueue import make_request
from jobqueue.broker.redis_io import translate_errors
from jobqueue.broker.schedule_scripts import (
    FireOutcome,
    ScheduleOp,
    claim_fire,
    record_fire_outcome,
    update_schedule,
)
from jobqueue.errors import (
    BrokerUnavailable,
    InvalidTransition,
    JobQueueError,
    ScheduleCorrupt,
    ScheduleNotFound,
    TaskNotFound,
    ValidationError,
)
from jobqueue.keys import GlobalKeys, keys_for_task
from jobqueue.models import CancelReason, TaskStatus
from jobqueue.payloads import escape_text
from jobqueue.schedules.cron import next_fire, shortest_interval
from jobqueue.schedules.model import (
    ConcurrencyPolicy,
    Schedule,
    ScheduleInfo,
    ScheduleOptions,
    fire_task_id,
    first_run_after_missed,
    from_ms,
    make_schedule,
    plan_fires,
    to_ms,
)

log = logging.getLogger(__name__)


def _server_now(client: Client) -> dt.datetime:
    with translate_errors():
        seconds, micros = client.redis.time()
    return dt.datetime.fromtimestamp(seconds + micros / 1e6, dt.UTC)


class ScheduleRegistry:
    """Create, change, pause, resume, delete and list recurring schedules (``app.schedules``)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.keys = GlobalKeys(client.settings.key_prefix)

    def register(
        self,
        name: str,
        *,
        cron: str,
        task: str,
        paused: bool | None = None,
        **options: Unpack[ScheduleOptions],
    ) -> ScheduleInfo:
        """Create or replace the schedule ``name``: enqueue ``task`` at every fire time of ``cron`` (5
        fields, 6 with seconds first, or @hourly / @daily / @weekly / @monthly / @yearly) in the IANA
        ``timezone`` (default UTC). The next fire is computed from now; ``paused=None`` keeps a paused
        schedule paused."""
        schedule = make_schedule(name, cron=cron, task=task, **options)
        now = _server_now(self.client)
        floor = self.client.settings.min_schedule_interval_seconds
        if floor > 0:
            gap = shortest_interval(schedule.cron_spec, now)
            if gap < floor:
                raise ValidationError(
                    "cron",
                    f"fires {gap:g} s apart at its closest; schedules must fire at least {floor:g} s apart "
                    "(JOBQUEUE_MIN_SCHEDULE_INTERVAL_SECONDS)",
                )
        next_ms = to_ms(next_fire(schedule.cron_spec, now))
        flag = "" if paused is None else ("1" if paused else "0")
        update_schedule(
            self.client, ScheduleOp.PUT, name, spec=schedule.to_json(), next_ms=next_ms, paused=flag
        )
        return self.get(name)

    def pause(self, name: str) -> None:
        """Stop firing (fires that fall in the pause are not caught up on resume)."""
        if not update_schedule(self.client, ScheduleOp.PAUSE, name):
            raise ScheduleNotFound(name)

    def resume(self, name: str) -> None:
        """Fire again from the next fire time after now."""
        schedule = self.get(name).schedule
        next_ms = to_ms(next_fire(schedule.cron_spec, _server_now(self.client)))
        if not update_schedule(self.client, ScheduleOp.RESUME, name, next_ms=next_ms):
            raise ScheduleNotFound(name)

    def delete(self, name: str) -> None:
        """Remove the schedule and its run state (tasks it created are untouched)."""
        if not update_schedule(self.client, ScheduleOp.DELETE, name):
            raise ScheduleNotFound(name)

    def get(self, name: str) -> ScheduleInfo:
        """One schedule with its last and next fire times; ScheduleNotFound if there is none, ScheduleCorrupt
        if its stored definition cannot be read."""
        infos = self._load([name], skip_corrupt=False)
        if not infos:
            raise ScheduleNotFound(name)
        return infos[0]

    def list(self) -> builtins.list[ScheduleInfo]:
        """Every schedule, by name, with its last and next fire times. One whose stored definition cannot be
        read is left out (and logged) so that it does not hide the others from the UI and /metrics."""
        with translate_errors():
            names = sorted(self.client.redis.hkeys(self.keys.schedules))
        return self._load(names, skip_corrupt=True)

    def _load(self, names: Sequence[str], *, skip_corrupt: bool) -> builtins.list[ScheduleInfo]:
        if not names:
            return []
        with translate_errors():
            pipe = self.client.redis.pipeline(transaction=False)
            for name in names:
                pipe.hget(self.keys.schedules, name)
                pipe.zscore(self.keys.schedules_due, name)
                pipe.hgetall(self.keys.schedule_state(name))
            rows = pipe.execute()
        infos = []
        for i in range(len(names)):
            spec_json, score, state = rows[3 * i : 3 * i + 3]
            if spec_json is None:
                continue
            try:
                schedule = Schedule.from_json(spec_json, names[i])
            except ScheduleCorrupt as exc:
                if not skip_corrupt:
                    raise
                log.error("%s", exc)
                continue
            last = state.get("last_fire_at")
            infos.append(
                ScheduleInfo(
                    schedule=schedule,
                    paused=state.get("paused") == "1",
                    next_fire_at=None if score is None else from_ms(float(score)),
                    last_fire_at=from_ms(int(last)) if last else None,
                    last_task_id=state.get("last_task_id") or None,
                    fired=int(state.get("fired") or 0),
                    missed=int(state.get("missed") or 0),
                    skipped=int(state.get("skipped") or 0),
                )
            )
        return infos


@dataclass
class FireReport:
    """What one pass of ``fire_due_schedules`` did; ``next_due_in`` is seconds until the earliest next
    fire of any active schedule (None when there is none)."""

    fired: int = 0
    missed: int = 0
    skipped: int = 0
    replaced: int = 0
    next_due_in: float | None = None


def _previous_running(client: Client, task_id: str | None) -> bool:
    if not task_id:
        return False
    with translate_errors():
        status = client.redis.hget(keys_for_task(client.settings.key_prefix, task_id).task(task_id), "status")
    return status is not None and not TaskStatus(status).is_terminal


def _fire(client: Client, keys: GlobalKeys, schedule: Schedule, fire_ms: int, report: FireReport) -> None:
    name = schedule.name
    with translate_errors():
        last_task = client.redis.hget(keys.schedule_state(name), "last_task_id")
    replaced = ""
    if schedule.concurrency_policy != ConcurrencyPolicy.ALLOW and _previous_running(client, last_task):
        if schedule.concurrency_policy == ConcurrencyPolicy.FORBID:
            record_fire_outcome(
                client, name, fire_ms, FireOutcome.SKIPPED, detail=f"{last_task} still running"
            )
            report.skipped += 1
            return
        try:
            client.cancel(last_task, force=True, reason=CancelReason.OTHER)
            replaced = last_task or ""
            report.replaced += 1
        except (TaskNotFound, InvalidTransition):
            pass  # finished in the meantime: nothing to replace
    task_id = fire_task_id(schedule.queue, name, fire_ms)
    try:
        request = make_request(
            schedule.task, schedule.args, schedule.kwargs, queue=schedule.queue, priority=schedule.priority
        )
        client.enqueue_many([dataclasses.replace(request, task_id=task_id)])
    except BrokerUnavailable:
        raise
    except JobQueueError as exc:
        # The fire time is claimed and will not come again: say in the record why it produced nothing.
        record_fire_outcome(
            client, name, fire_ms, FireOutcome.FAILED, replaced=replaced, detail=escape_text(str(exc)[:1000])
        )
        raise
    record_fire_outcome(client, name, fire_ms, FireOutcome.FIRED, task_id=task_id, replaced=replaced)
    report.fired += 1
    log.info(
        "schedule %s fired task %s",
        name,
        task_id,
        extra={"task_id": task_id, "queue": schedule.queue},
    )


def _fire_schedule(
    client: Client,
    keys: GlobalKeys,
    name: str,
    *,
    score: int,
    now: dt.datetime,
    claimer: str,
    report: FireReport,
) -> None:
    with translate_errors():
        spec_json = client.redis.hget(keys.schedules, name)
    if spec_json is None:
        update_schedule(client, ScheduleOp.CLEANUP, name)
        return
    schedule = Schedule.from_json(spec_json, name)
    spec = schedule.cron_spec
    plan = plan_fires(spec, score, now, schedule.starting_deadline_seconds)
    if plan.missed and plan.missed_from is not None:
        target = first_run_after_missed(plan, spec, now)
        if claim_fire(client, name, plan.missed_from, next_ms=target, claimer=claimer, missed=plan.missed):
            report.missed += plan.missed
            log.warning("schedule %s: %d fire(s) missed", name, plan.missed)
    for fire_ms in plan.run:
        if claim_fire(client, name, fire_ms, next_ms=plan.next_after[fire_ms], claimer=claimer, missed=0):
            _fire(client, keys, schedule, fire_ms, report)


def fire_due_schedules(client: Client, claimer: str) -> FireReport:
    """Fire every due schedule once per fire time (safe to run in any number of schedulers at once)."""
    keys = GlobalKeys(client.settings.key_prefix)
    report = FireReport()
    now = _server_now(client)
    now_ms = to_ms(now)
    with translate_errors():
        due = client.redis.zrangebyscore(keys.schedules_due, "-inf", now_ms, withscores=True)
    for name, score in due:
        try:
            _fire_schedule(client, keys, name, score=int(score), now=now, claimer=claimer, report=report)
        except BrokerUnavailable:
            raise
        except JobQueueError as exc:
            # One broken schedule (e.g. its task's queue rejects the payload) must not stop the others.
            log.error("schedule %s could not fire: %s", name, exc)
    with translate_errors():
        first = client.redis.zrange(keys.schedules_due, 0, 0, withscores=True)
    if first:
        report.next_due_in = max(0.0, (float(first[0][1]) - to_ms(_server_now(client))) / 1000)
    return report
