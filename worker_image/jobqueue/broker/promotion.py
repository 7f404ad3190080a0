"""The typed wrapper of promote.lua: due delayed tasks (eta, countdown, retry backoff) become ready."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jobqueue.broker.scripts import ScriptCall
from jobqueue.keys import QueueKeys
from jobqueue.settings import Settings


@dataclass(frozen=True)
class Promotion:
    """What one promote call did in one queue."""

    promoted: int  # tasks moved from the delayed set to their ready list
    next_due_ms: int  # ms until the earliest task still delayed is due; -1 when none is


def build_promote(settings: Settings, queue: str) -> ScriptCall:
    """Promote up to ``settings.promote_batch`` due delayed tasks of ``queue`` (and wake idle workers if
    any became ready)."""
    k = QueueKeys(settings.key_prefix, queue)
    return ScriptCall("promote", (*k.ready_all, k.delayed, k.wake), (k.task_prefix, settings.promote_batch))


def parse_promote(reply: Sequence[Any]) -> Promotion:
    """Decode promote.lua's reply {promoted, next_due_ms}."""
    return Promotion(int(reply[0]), int(reply[1]))
