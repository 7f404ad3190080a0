"""The recorder's stream positions: entry id order, the start from a consumer group, trimmed counts and
each recorder's share of the streams (pure)."""

import pytest

from jobqueue.record.positions import (
    START,
    Position,
    entry_before,
    entry_key,
    fair_share,
    group_start,
    trimmed_unread,
)

pytestmark = pytest.mark.timeout(10)


def test_entry_ids_order_as_redis_orders_them() -> None:
    assert entry_key("1700000000000-12") > entry_key("1700000000000-9")  # not as strings
    assert entry_key("5") == (5, 0)


def test_the_id_before_an_entry_makes_xread_return_that_entry_first() -> None:
    assert entry_before("10-3") == "10-2"
    assert entry_before("10-0") == f"9-{2**64 - 1}"
    assert entry_before("0-0") == START
    assert entry_key(entry_before("10-0")) < entry_key("10-0")


def test_a_stream_without_a_position_starts_from_the_groups_oldest_pending_entry() -> None:
    group = {"last-delivered-id": "20-0", "entries-read": 7, "pending": 2}
    start = group_start(group, "12-4")
    assert start is not None and (start.entry_id, start.consumed) == ("12-3", None)


def test_else_after_the_groups_last_delivered_entry_else_from_the_start() -> None:
    start = group_start({"last-delivered-id": "20-0", "entries-read": 7, "pending": 0}, None)
    assert start is not None and (start.entry_id, start.consumed) == ("20-0", 7)
    # Redis 7 cannot always count a group's reads: unknown, not 0.
    start = group_start({"last-delivered-id": "20-0", "entries-read": None}, None)
    assert start is not None and start.consumed is None
    start = group_start({"last-delivered-id": "0-0", "entries-read": None}, None)
    assert start is not None and (start.entry_id, start.consumed) == (START, 0)
    assert group_start(None, None) is None


def test_entries_trimmed_past_the_position_are_counted_once_known() -> None:
    at = Position("s", "100-0", 10)
    # 50 added: 10 passed, 30 still in the stream, starting after a gap: 10 lost.
    assert trimmed_unread(at, "150-0", 50, 30) == 10
    # The stream still holds the position's entry: nothing was trimmed unread.
    assert trimmed_unread(at, "90-0", 50, 40) == 0
    assert trimmed_unread(Position("s", "100-0", None), "150-0", 50, 30) == 0  # count unknown
    assert trimmed_unread(at, "150-0", None, 30) == 0  # Redis 6: no entries-added
    assert trimmed_unread(at, None, 50, 0) == 0  # empty stream
    # A stream deleted and created again counts from zero: never a negative loss.
    assert trimmed_unread(at, "150-0", 3, 3) == 0


def test_streams_spread_evenly_over_the_live_recorders() -> None:
    assert fair_share(5, 2) == 3
    assert fair_share(4, 2) == 2
    assert fair_share(3, 5) == 1
    assert fair_share(7, 0) == 7  # the count read before this recorder registered
