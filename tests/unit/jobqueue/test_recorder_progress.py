"""The recorder's lag and recorded count from one stream's consumer group (pure part)."""

import pytest

from jobqueue.broker.recorder_progress import entry_ms, stream_progress

pytestmark = pytest.mark.timeout(10)
NOW = 1_800_000_010_000


def test_lag_is_the_age_of_the_older_of_oldest_pending_and_first_undelivered() -> None:
    group = {"entries-read": 10, "pending": 3}
    lag, recorded = stream_progress(group, f"{NOW - 4000}-0", f"{NOW - 2500}-1", NOW)
    assert (lag, recorded) == (4.0, 7)
    lag, _ = stream_progress(group, None, f"{NOW - 2500}-1", NOW)
    assert lag == 2.5


def test_caught_up_is_zero_and_unknown_reads_count_nothing() -> None:
    assert stream_progress({"entries-read": 5, "pending": 0}, None, None, NOW) == (0.0, 5)
    # Redis 7 cannot count this group, Redis 6 never reports it: unknown, not 0.
    group = {"entries-read": None, "pending": 0, "last-delivered-id": f"{NOW - 1}-0"}
    assert stream_progress(group, None, None, NOW) == (0.0, None)
    assert stream_progress({"pending": 2}, f"{NOW - 1000}-0", None, NOW) == (1.0, None)
    # ... but a group that never delivered an entry has recorded none.
    fresh = {"entries-read": None, "pending": 0, "last-delivered-id": "0-0"}
    assert stream_progress(fresh, None, None, NOW) == (0.0, 0)
    # An entry stamped ahead of this clock (another server's time) is no negative lag.
    assert stream_progress({"entries-read": 1, "pending": 1}, f"{NOW + 50}-0", None, NOW)[0] == 0.0


def test_entry_ids_carry_their_millisecond_timestamp() -> None:
    assert entry_ms("1700000000123-7") == 1_700_000_000_123
