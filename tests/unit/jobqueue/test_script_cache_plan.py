"""Which calls of an exchange that met NOSCRIPT may be re-run (jobqueue.broker.script_cache.rerun_plan):
a re-run call must never come after a later call of its exchange that touches the same keys."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from redis.exceptions import NoScriptError, ResponseError

from jobqueue.broker.script_cache import is_noscript, plan_reruns, rerun_plan
from jobqueue.broker.scripts import ScriptCall
from jobqueue.errors import ScriptCacheLost

MISSING = NoScriptError("No matching script. Please use EVAL.")


def _call(*keys: str) -> ScriptCall:
    return ScriptCall("enqueue", keys, ())


def test_a_missing_suffix_is_rerun_whole_in_order() -> None:
    calls = [_call("{q}:ready"), _call("{q}:ready"), _call("{q}:ready")]
    assert rerun_plan(calls, ["ok", MISSING, MISSING]) == ([1, 2], [])


def test_a_missing_call_before_a_call_that_ran_on_its_keys_is_ended() -> None:
    calls = [_call("{q}:ready", "{q}:u"), _call("{q}:ready")]
    assert rerun_plan(calls, [MISSING, "ok"]) == ([], [0])


def test_a_missing_call_before_a_call_on_other_keys_is_rerun() -> None:
    calls = [_call("{a}:ready"), _call("{b}:ready")]
    assert rerun_plan(calls, [MISSING, "ok"]) == ([0], [])


def test_a_call_sharing_keys_with_an_ended_one_is_ended_too() -> None:
    # 0 (a parent) is ended by 1; 2 (its child, on the parent's key) must not run without it.
    calls = [_call("{q}:ready", "{q}:p"), _call("{q}:ready"), _call("{q}:p", "{q}:c")]
    assert rerun_plan(calls, [MISSING, "ok", MISSING]) == ([], [0, 2])


def test_plan_reruns_puts_script_cache_lost_in_place() -> None:
    calls = [_call("{q}:ready"), _call("{q}:ready")]
    replies: list[Any] = [MISSING, "ok"]
    assert plan_reruns(calls, replies) == []
    assert isinstance(replies[0], ScriptCacheLost) and replies[1] == "ok"


def test_noscript_is_recognised_from_either_parser() -> None:
    assert is_noscript(MISSING) and is_noscript(ResponseError("NOSCRIPT No matching script"))
    assert not is_noscript(ResponseError("WRONGTYPE")) and not is_noscript("NOSCRIPT")


@given(
    st.lists(
        st.tuples(st.sets(st.sampled_from("abcd"), min_size=1, max_size=3), st.booleans()),
        max_size=12,
    )
)
def test_no_rerun_call_comes_after_a_later_call_on_its_keys(spec: list[tuple[set[str], bool]]) -> None:
    calls = [_call(*sorted(keys)) for keys, _ in spec]
    replies = [MISSING if missing else "ok" for _, missing in spec]
    rerun, ended = rerun_plan(calls, replies)
    assert sorted(rerun + ended) == [i for i, (_, missing) in enumerate(spec) if missing]
    assert rerun == sorted(rerun)
    for i in rerun:
        for j in range(i + 1, len(spec)):
            if not spec[j][1]:  # ran
                assert not set(calls[i].keys) & set(calls[j].keys)
        for j in ended:
            if j < i:  # an ended call's effect is missing: nothing after it on its keys may run
                assert not set(calls[i].keys) & set(calls[j].keys)
