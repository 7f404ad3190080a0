"""Schedules declared in code (``@app.periodic``): validated at decoration, synced when a scheduler starts.

Syncing is idempotent: a declared schedule whose stored definition is the same is left alone (its next
fire time and counters are kept); a new or changed one is registered. A code schedule that is stored but
no longer declared is neither kept running nor deleted silently: it is paused, marked ``orphaned`` (the
API's schedule listing shows ``source: code, orphaned: true``) and logged as a warning at every sync, until
someone deletes it or the code declares it again (which resumes it).

Several schedulers may start with different code (a rolling deploy): the last one to sync wins, and each
sync is logged, so a flapping schedule shows in the logs rather than silently.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobqueue.errors import ConfigurationError, ValidationError
from jobqueue.models import Priority
from jobqueue.schedules.model import SOURCE_CODE, ConcurrencyPolicy, Schedule, make_schedule
from jobqueue.schedules.registry import ScheduleRegistry

log = logging.getLogger(__name__)


def declare_periodic(
    name: str,
    *,
    cron: str,
    task: str,
    tz: str = "UTC",
    queue: str = "default",
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    priority: Priority | str = Priority.MEDIUM,
    concurrency_policy: ConcurrencyPolicy | str = ConcurrencyPolicy.ALLOW,
    starting_deadline_seconds: float | None = None,
) -> Schedule:
    """A code schedule, validated now: ConfigurationError naming the schedule and the field (an invalid
    cron or zone, arguments no store accepts, ...), so a mistake stops the import of the app, not a fire
    at 3 a.m."""
    try:
        return make_schedule(
            name,
            cron=cron,
            task=task,
            timezone=tz,
            queue=queue,
            args=args,
            kwargs=kwargs,
            priority=priority,
            concurrency_policy=concurrency_policy,
            starting_deadline_seconds=starting_deadline_seconds,
            source=SOURCE_CODE,
        )
    except ValidationError as exc:
        field_name = "tz" if exc.field == "timezone" else exc.field
        raise ConfigurationError(f"@app.periodic {name!r}: {field_name}: {exc.message}") from exc


@dataclass
class SyncReport:
    """What one sync did, by schedule name."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why (logged; the others still sync)


def _register(registry: ScheduleRegistry, schedule: Schedule, *, paused: bool | None) -> None:
    registry.register(
        schedule.name,
        cron=schedule.cron,
        task=schedule.task,
        paused=paused,
        timezone=schedule.timezone,
        args=schedule.args,
        kwargs=schedule.kwargs,
        queue=schedule.queue,
        priority=schedule.priority,
        concurrency_policy=schedule.concurrency_policy,
        starting_deadline_seconds=schedule.starting_deadline_seconds,
        source=schedule.source,
        orphaned=schedule.orphaned,
    )


def sync_code_schedules(registry: ScheduleRegistry, declared: Mapping[str, Schedule]) -> SyncReport:
    """Make the stored code schedules match ``declared`` (see the module docstring). One schedule that
    cannot be registered (e.g. under JOBQUEUE_MIN_SCHEDULE_INTERVAL_SECONDS) is logged and skipped.
    BrokerUnavailable propagates: the caller retries the whole sync."""
    report = SyncReport()
    stored = {info.schedule.name: info for info in registry.list()}
    for name, schedule in sorted(declared.items()):
        current = stored.get(name)
        try:
            if current is None:
                _register(registry, schedule, paused=False)
                report.created.append(name)
            elif current.schedule == schedule:
                report.unchanged.append(name)
            else:
                if current.schedule.source != SOURCE_CODE:
                    log.warning("schedule %r was registered over the API; @app.periodic replaces it", name)
                # A schedule the code declares again after it was orphaned runs again.
                _register(registry, schedule, paused=False if current.schedule.orphaned else None)
                report.updated.append(name)
        except ValidationError as exc:
            log.error("code schedule %r cannot be registered: %s", name, exc)
            report.failed[name] = str(exc)
    for name, info in sorted(stored.items()):
        if info.schedule.source != SOURCE_CODE or name in declared:
            continue
        report.orphaned.append(name)
        log.warning(
            "schedule %r was declared with @app.periodic but no longer is: paused and marked orphaned, not "
            "deleted (delete it with DELETE /api/v1/schedules/%s, or declare it again)",
            name,
            name,
        )
        if not info.schedule.orphaned or not info.paused:
            _register(registry, dataclasses.replace(info.schedule, orphaned=True), paused=True)
    log.info(
        "code schedules synced: %d created, %d updated, %d unchanged, %d orphaned, %d failed",
        len(report.created),
        len(report.updated),
        len(report.unchanged),
        len(report.orphaned),
        len(report.failed),
    )
    return report
