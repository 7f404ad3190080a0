"""Where the process pool's idle wait runs (worker/process_wait.py HandoffPace): in a child while hand-offs
arrive far apart, in the worker process while they come back to back."""

from __future__ import annotations

from jobqueue.worker.process_wait import CHILD_WAIT_MIN_GAP_SECONDS, HandoffPace


def test_an_idle_worker_waits_in_a_child() -> None:
    pace = HandoffPace()
    assert pace.wait_in_child()
    pace.handed_off(100.0)  # one hand-off alone says nothing about the pace yet
    assert pace.wait_in_child()


def test_hand_offs_ten_ms_apart_keep_the_wait_in_a_child() -> None:
    pace = HandoffPace()
    for i in range(50):
        pace.handed_off(100.0 + i * 0.010)
        assert pace.wait_in_child()


def test_back_to_back_hand_offs_move_the_wait_to_the_worker_and_a_quiet_wait_moves_it_back() -> None:
    pace = HandoffPace()
    now = 100.0
    for _ in range(20):
        now += 0.001
        pace.handed_off(now)
    assert not pace.wait_in_child() and pace.gap < CHILD_WAIT_MIN_GAP_SECONDS
    pace.quiet()  # a wait ended with nothing handed off: idle again
    assert pace.wait_in_child()


def test_one_long_gap_in_a_burst_does_not_flip_the_choice_back_at_once() -> None:
    pace = HandoffPace()
    now = 100.0
    for _ in range(20):
        now += 0.001
        pace.handed_off(now)
    pace.handed_off(now + 0.008)  # one gap above the bound, averaged with the burst's
    assert not pace.wait_in_child()
