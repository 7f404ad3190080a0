"""The recorder's lag and recorded count from the mirrored stream positions (pure part)."""

import pytest

from jobqueue.broker.recorder_progress import entry_ms, parse_position, stream_lag

pytestmark = pytest.mark.timeout(10)
NOW = 1_800_000_010_000


def test_lag_is_the_age_of_the_first_entry_after_the_position() -> None:
    assert stream_lag(f"{NOW - 2500}-1", NOW) == 2.5
    assert stream_lag(None, NOW) == 0.0
    # An entry stamped ahead of this clock (another server's time) is no negative lag.
    assert stream_lag(f"{NOW + 50}-0", NOW) == 0.0


def test_mirrored_positions_carry_an_entry_id_and_a_count_that_may_be_unknown() -> None:
    assert parse_position(f"{NOW}-3 42") == (f"{NOW}-3", 42)
    assert parse_position(f"{NOW}-3 ") == (f"{NOW}-3", None)
    assert parse_position(None) is None and parse_position("") is None


def test_entry_ids_carry_their_millisecond_timestamp() -> None:
    assert entry_ms("1700000000123-7") == 1_700_000_000_123
