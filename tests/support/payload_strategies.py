"""Hypothesis strategies for hostile JSON: what Python and JSON allow but stores may not (NUL, lone
surrogates, huge integers, deep nesting, long strings, unicode keys), and profiles that bound the budget.

``make test`` runs the "default" profile (a few examples per test); ``make fuzz`` selects "fuzz" through
JOBQUEUE_HYPOTHESIS_PROFILE and runs many more.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz",
    max_examples=2_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = settings.get_profile(os.environ.get("JOBQUEUE_HYPOTHESIS_PROFILE", "default"))

# Every code point, lone surrogates included (st.text excludes them by default), and NUL made common.
hostile_chars = st.one_of(
    st.sampled_from(["\x00", "\ud800", "\udc80", "\udfff", "\u2028", "\ufeff", "\\", '"', "é", "😀"]),
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
)
plain_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
# One unstorable code point inside ordinary text: the realistic case, and common enough that every run
# sees both sides of the rule.
poisoned_text = st.builds(
    lambda a, c, b: a + c + b, plain_text, st.sampled_from(["\x00", "\ud800", "\udc80", "\udfff"]), plain_text
)
hostile_text = st.one_of(
    st.text(hostile_chars, max_size=40),
    poisoned_text,
    st.builds(lambda c, n: c * n, hostile_chars, st.integers(1000, 20_000)),  # long strings
)
huge_ints = st.one_of(st.integers(), st.integers(-(10**300), 10**300), st.just(2**63), st.just(-(2**63) - 1))


def json_values(text: st.SearchStrategy[str] = hostile_text) -> st.SearchStrategy[Any]:
    """Arbitrary JSON with strings (values and keys) drawn from ``text``."""
    floats = st.floats(allow_nan=False, allow_infinity=False)
    leaves = st.one_of(st.none(), st.booleans(), huge_ints, floats, text)
    keys = st.text(hostile_chars, max_size=8)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
        max_leaves=20,
    )


def deep(depth: int) -> Any:
    """A list nested ``depth`` levels deep."""
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def deep_values() -> st.SearchStrategy[Any]:
    """Nesting around and far past jobqueue.payloads.MAX_DEPTH."""
    return st.integers(1, 400).map(deep)
