"""The soak (bench/soak.py), short: load with poison output, SIGKILLed workers, a Redis crash restarted
from its AOF and a PostgreSQL outage, on real processes. Runs in `make test` (and so in CI, .ci/run);
`make soak` runs the long one (SOAK_MINUTES, default 10).

Wall time about two minutes: 1.5 minutes of load, the servers' start and the drain."""

from __future__ import annotations

import pytest
from bench.soak import run_soak
from bench.soak_verdict import format_table

pytestmark = [pytest.mark.soak, pytest.mark.timeout(300)]


def test_nothing_is_lost_duplicated_unrecorded_or_answered_500_under_faults() -> None:
    report, stack = run_soak(minutes=1.5)
    table = format_table(report)
    # Every fault happened, so a clean report means something.
    assert report.workers_killed >= 3, table
    assert report.redis_crashes == 1 and report.postgres_outages == 1, table
    assert report.by_status.get("FAILED", 0) > 0 and report.http_requests > 0, table
    # Some kill interrupted a running task body, whose re-run the duplicate rule then had to allow.
    assert report.reruns_allowed > 0, table
    assert report.problems() == [], f"{table}\nlogs kept in {stack.logs}"
    assert report.done == report.tasks_in and report.recorded == report.done, table
