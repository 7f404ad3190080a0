"""The liveness files behind `jobqueue worker-health` (local files only, no Redis)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobqueue.cli.main import main
from jobqueue.worker.health import LivenessFile, liveness_path, read_health


@pytest.mark.parametrize(
    "worker_id", ["../../etc/passwd", "pod\x00name", "a/b", "\udcff", "..", "", "x" * 300]
)
def test_hostile_worker_ids_stay_inside_the_directory(tmp_path: Path, worker_id: str) -> None:
    path = liveness_path(tmp_path, worker_id[:200])
    assert path.parent == tmp_path
    assert path.name not in {"", ".", ".."}
    LivenessFile(str(tmp_path), worker_id[:200]).touch()
    assert [p.parent for p in tmp_path.iterdir()] == [tmp_path]


def test_fresh_files_are_healthy_and_one_stale_process_fails_the_pod(tmp_path: Path) -> None:
    for worker in ("pod-a_0", "pod-a_1"):
        LivenessFile(str(tmp_path / "health"), worker).touch()
    report = read_health(tmp_path / "health", max_age=5)
    assert report.healthy, report.describe()
    old = liveness_path(tmp_path / "health", "pod-a_1")
    os.utime(old, (old.stat().st_atime - 60, old.stat().st_mtime - 60))
    report = read_health(tmp_path / "health", max_age=5)
    assert not report.healthy
    assert report.stale == ["pod-a_1"]
    assert "pod-a_1" in report.describe()


def test_no_file_is_unhealthy_and_a_clean_exit_removes_its_file(tmp_path: Path) -> None:
    assert not read_health(tmp_path / "missing", max_age=5).healthy
    alive = LivenessFile(str(tmp_path), "pod-b")
    alive.touch()
    alive.remove()
    alive.remove()  # twice is fine
    assert read_health(tmp_path, max_age=5).ages == {}


def test_an_unwritable_directory_never_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    LivenessFile(str(blocker / "health"), "pod-c").touch()  # a file where the directory should be
    LivenessFile(None, "pod-c").touch()  # no directory configured: nothing to do


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["worker-health", "--dir", str(tmp_path), "--max-age", "5"]) == 1
    LivenessFile(str(tmp_path), "pod-d").touch()
    assert main(["worker-health", "--dir", str(tmp_path), "--max-age", "5"]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["worker-health", "--dir", str(tmp_path), "--max-age", "nan"]) == 2
    assert "max_age" in capsys.readouterr().err


def test_cli_without_a_directory_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JOBQUEUE_HEALTH_DIR", raising=False)
    assert main(["worker-health"]) == 2
    assert "JOBQUEUE_HEALTH_DIR" in capsys.readouterr().err
