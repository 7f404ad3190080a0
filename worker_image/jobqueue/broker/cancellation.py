"""The typed wrapper of ``lua/cancel.lua``: a pending task is cancelled at once, a running one is flagged
(and its worker told on the cancel channel) so it stops at its next check, or is killed when forced."""

from __future__ import annotations

from jobqueue.broker.scripts import ScriptCall
from jobqueue.keys import QueueKeys
from jobqueue.models import Priority
from jobqueue.settings import Settings


def build_cancel(
    settings: Settings, task_id: str, priority: Priority, reason: str, force: bool
) -> ScriptCall:
    """The cancel script call for a task whose priority is known (its ready list is needed)."""
    keys = QueueKeys(settings.key_prefix, task_id.rpartition(".")[0])
    return ScriptCall(
        "cancel",
        (
            keys.task(task_id),
            keys.ready(priority),
            keys.delayed,
            keys.events,
            keys.stats,
            keys.children(task_id),
        ),
        (
            task_id,
            reason,
            "force" if force else "graceful",
            settings.events_max_length,
            keys.done_channel(task_id),
            keys.cancel_channel,
            settings.result_ttl_seconds,
        ),
    )
