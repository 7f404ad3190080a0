"""Peered replicas: the oldest leads, priorities never tie, and the entry point wires peering through."""

from __future__ import annotations

import random

import pytest

from jobqueue_operator.main import build_settings, parse_args
from jobqueue_operator.peering import kopf_settings, leader_priority

pytestmark = pytest.mark.timeout(10)
T0 = 1_795_000_000.0


def test_an_older_replica_has_the_higher_priority() -> None:
    rng = random.Random(1)
    assert leader_priority(T0, rng) > leader_priority(T0 + 0.001, rng)
    assert leader_priority(T0, rng) > leader_priority(T0 + 3600, rng)


def test_replicas_started_in_the_same_millisecond_get_different_priorities() -> None:
    # Equal priorities make kopf pause every replica: the tie-break must separate them.
    rng = random.Random(7)
    priorities = {leader_priority(T0, rng) for _ in range(20)}
    assert len(priorities) > 1


def test_priorities_fit_the_api_server_s_int64() -> None:
    year_2200 = 7_258_118_400.0
    assert -(2**63) < leader_priority(year_2200, random.Random(0)) < 0


def test_kopf_settings_carry_the_lifetime_quietly() -> None:
    settings = kopf_settings(lifetime_seconds=12)
    assert (settings.peering.lifetime, settings.peering.stealth) == (12, True)


def test_peering_flags_override_the_environment() -> None:
    settings = build_settings(parse_args(["-n", "ns", "--peering", "jq-operators", "--priority", "5"]))
    assert (settings.peering, settings.priority) == ("jq-operators", 5)
    standalone = build_settings(parse_args(["-n", "ns"]))
    assert standalone.peering is None and standalone.priority is None


def test_the_operator_takes_the_same_log_formats_as_jobqueue_and_defaults_to_auto() -> None:
    # auto: JSON unless stderr is a terminal (jobqueue.log_config), as the worker and the API.
    assert parse_args(["-A"]).log_format == "auto"
    assert parse_args(["-A", "--log-format", "text"]).log_format == "text"
    with pytest.raises(SystemExit):
        parse_args(["-A", "--log-format", "xml"])
