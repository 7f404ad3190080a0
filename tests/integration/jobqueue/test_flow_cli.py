"""``jobqueue queue`` and ``jobqueue schedule`` against a real Redis."""

from __future__ import annotations

import json

import pytest

from jobqueue import Settings
from jobqueue.cli.main import main

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_REDIS_URL", settings.redis_url.get_secret_value())
    monkeypatch.setenv("JOBQUEUE_KEY_PREFIX", settings.key_prefix)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_queue_commands(capsys: pytest.CaptureFixture[str]) -> None:
    stats = run(capsys, "queue", "rate-limit", "mail", "--limit", "100", "--period", "60", "--burst", "20")
    assert stats["limit"] == 100 and stats["remaining"] == 20  # type: ignore[index]
    assert run(capsys, "queue", "pause", "mail")["paused"] is True  # type: ignore[index]
    assert run(capsys, "queue", "max-in-flight", "mail", "--value", "3")["max_in_flight"] == 3  # type: ignore[index]
    cfg = run(capsys, "queue", "priority", "mail", "--policy", "weighted", "--weights", "5:3:2")
    assert cfg["weights"] == [5, 3, 2]  # type: ignore[index]
    assert run(capsys, "queue", "resume", "mail")["paused"] is False  # type: ignore[index]
    cfg = run(capsys, "queue", "retries", "mail", "--max-retries", "4", "--backoff", "linear", "--no-jitter")
    assert cfg["retry_defaults"]["max_retries"] == 4  # type: ignore[index]
    assert cfg["retry_defaults"]["jitter"] is False  # type: ignore[index]
    assert run(capsys, "queue", "max-lost-leases", "mail", "--value", "1")["max_lost_leases"] == 1  # type: ignore[index]
    assert run(capsys, "queue", "retries", "mail", "--off")["retry_defaults"] is None  # type: ignore[index]


def test_a_priority_levels_own_rate_limit(capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, *"queue rate-limit mail --limit 100 --period 60".split())
    cfg = run(capsys, *"queue rate-limit mail --level low --limit 5 --period 2 --burst 2".split())
    low = {"limit": 5, "period_seconds": 2.0, "burst": 2, "enabled": True}
    assert cfg["priority_rate_limits"] == {"low": low}  # type: ignore[index]
    assert cfg["rate_limit"]["limit"] == 100  # type: ignore[index]  # the queue's own limit is untouched
    cfg = run(capsys, *"queue rate-limit mail --level low --off".split())
    assert cfg["priority_rate_limits"] == {} and cfg["rate_limit"]["limit"] == 100  # type: ignore[index]
    # A level's limit follows the queue limit's rules: a clear error naming the field, exit 2.
    assert main("queue rate-limit mail --level high --limit 0".split()) == 2
    assert "limit" in capsys.readouterr().err


def test_schedule_commands(capsys: pytest.CaptureFixture[str]) -> None:
    info = run(capsys, "schedule", "register", "nightly", "--cron", "0 3 * * *", "--task", "cleanup",
               "--timezone", "Europe/Paris", "--concurrency-policy", "Forbid")  # fmt: skip
    assert info["schedule"]["timezone"] == "Europe/Paris"  # type: ignore[index]
    assert run(capsys, "schedule", "pause", "nightly")["paused"] is True  # type: ignore[index]
    assert [s["schedule"]["name"] for s in run(capsys, "schedule", "list")] == ["nightly"]  # type: ignore[index, union-attr]
    assert main(["schedule", "delete", "nightly"]) == 0
    assert main(["schedule", "pause", "nightly"]) == 2  # ScheduleNotFound: a clear error, exit 2
    assert main(["schedule", "register", "x", "--cron", "nope", "--task", "t"]) == 2
