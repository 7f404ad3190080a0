"""The reply of the completion scripts (ack.lua, fail.lua, release.lua): a list of one code per task,
defined once for the three of them in lua/_fence.lua."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any


class CompletionCode(enum.IntEnum):
    """What ack, fail and release did with one task (lua/_fence.lua). Positive: recorded; negative: the
    attempt was stale and nothing changed."""

    SUCCEEDED = 1  # ack: the task is SUCCESS
    RETRY_SCHEDULED = 2  # fail: it waits in the delayed set for its retry
    FINISHED = 3  # fail: dead-lettered, timed out or cancelled for good; release: cancel was requested
    RELEASED = 4  # release: back at the front of its ready list
    LEASE_LOST = -1  # this attempt is still the latest, but its lease is gone (recovered, finished)
    FENCED = -2  # the token is not the task's latest attempt (a newer one holds it)
    UNKNOWN_TASK = -3  # no such task (expired, purged, or never existed)

    @property
    def stale(self) -> bool:
        """True when the script refused the call (nothing changed)."""
        return self < 0


def parse_completion(reply: Sequence[Any]) -> list[CompletionCode]:
    """The codes of an ack, fail or release reply (a list, one per task, in call order). A code this
    version does not know raises ValueError: the scripts and this enum ship together."""
    return [CompletionCode(int(code)) for code in reply]
