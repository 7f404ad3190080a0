"""The pure routing of WAIT on Redis Cluster: calls grouped by node, replies put back in call order with
ASKING's replies dropped, and which redirections are followed and after what pause."""

from __future__ import annotations

from redis.exceptions import AskError, MovedError, ResponseError, TryAgainError

from jobqueue.broker.cluster_replica_wait import (
    RoutedCall,
    _asked,
    _group,
    _pause,
    _pipeline_commands,
    _ran_any,
    _redirections,
    _spread,
    _Target,
)

WAIT = ("WAIT", 1, 100)


def test_calls_are_grouped_by_owner_and_an_asked_call_goes_to_the_node_named_with_asking() -> None:
    calls = [RoutedCall(("EVALSHA", str(i)), key) for i, key in enumerate(["{a}", "{b}", "{a}", "{c}"])]
    owners = {"{a}": ("h", 1), "{b}": ("h", 2), "{c}": ("h", 1)}
    groups = _group(calls, [0, 1, 2, 3], owners.__getitem__, {2: ("h", 3)})
    assert groups == {
        _Target("h", 1, asking=False): [0, 3],
        _Target("h", 2, asking=False): [1],
        _Target("h", 3, asking=True): [2],
    }
    asking = _Target("h", 3, asking=True)
    assert _pipeline_commands(calls, [2], asking, WAIT) == [("ASKING",), ("EVALSHA", "2"), WAIT]
    replies: list[object] = [None] * 4
    assert _spread(["OK", "r2", 1], [2], asking, replies) == 1
    assert replies == [None, None, "r2", None]


def test_moved_ask_and_tryagain_are_followed_other_errors_stay_in_place() -> None:
    replies: list[object] = [
        "ok",
        MovedError("3999 127.0.0.1:7001"),
        AskError("3999 127.0.0.1:7002"),
        TryAgainError("Multiple keys request during rehashing of slot"),
        ResponseError("ERR wrong type"),
    ]
    again, moved, busy = _redirections(replies, range(5))
    assert (again, moved, busy) == ([1, 2, 3], True, True)
    assert _asked(replies, again) == {2: ("127.0.0.1", 7002)}  # a MOVED is not sent with ASKING


def test_a_first_redirection_is_followed_at_once_a_busy_slot_after_growing_pauses() -> None:
    assert _pause(0, moved=True, busy=False) == 0.0
    assert _pause(0, moved=False, busy=False) == 0.0  # ASK
    assert [_pause(r, moved=False, busy=True) for r in range(5)] == [0.05, 0.1, 0.2, 0.4, 0.8]
    assert _pause(2, moved=True, busy=False) == 0.2


def test_the_wait_of_a_group_whose_calls_were_all_redirected_is_not_counted() -> None:
    # A node that has just become a replica answers MOVED to the calls and an error to WAIT.
    replies: list[object] = [MovedError("3999 127.0.0.1:7001"), TryAgainError("busy"), "ok", None]
    assert not _ran_any(replies, [0, 1])
    assert _ran_any(replies, [0, 2])
