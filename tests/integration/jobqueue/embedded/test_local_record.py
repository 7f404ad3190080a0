"""The record of ``jobqueue up`` (record/local.py) and its password across restarts: a data dir deleted to
start afresh must start afresh, also for root, whose cluster lives outside the data dir; a replaced
password file is refused at once, saying what to do, never after a 30 s wait."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import psycopg
import pytest

from jobqueue import Settings
from jobqueue.errors import ConfigurationError
from jobqueue.record.local import PASSWORD_FILE, LocalRecord, local_data_dir

pytestmark = pytest.mark.timeout(180)


def data_dir_of(base_dir: Path, mode: int = 0o700) -> Path:
    """The data dir as `jobqueue up` makes it (0700: ours alone)."""
    data_dir = base_dir / ".jobqueue"
    data_dir.mkdir(mode=mode)
    os.chmod(data_dir, mode)
    return data_dir


def run_record(data_dir: Path, settings: Settings, sql: str | None = None) -> object:
    record = LocalRecord(data_dir, settings).start()
    try:
        with psycopg.connect(record.database_url, autocommit=True) as conn:
            if sql is not None:
                conn.execute(sql)
            return conn.execute("SELECT to_regclass('public.kept_from_before')").fetchone()
    finally:
        record.stop()


def test_a_deleted_data_dir_starts_a_new_record_and_a_replaced_password_is_refused_at_once(
    base_dir: Path, settings: Settings
) -> None:
    data_dir = data_dir_of(base_dir)
    cluster_home = local_data_dir(data_dir)
    try:
        if os.geteuid() == 0:
            # The case this guards: root's cluster lives outside the 0700 data dir, so deleting the data
            # dir left it behind, with a password nobody had any more.
            assert not cluster_home.is_relative_to(data_dir)
        run_record(data_dir, settings, "CREATE TABLE kept_from_before ()")
        assert run_record(data_dir, settings) == ("kept_from_before",)  # a restart keeps the record

        shutil.rmtree(data_dir)
        data_dir = data_dir_of(base_dir)
        assert run_record(data_dir, settings) == (None,)  # a new record, as the data dir is new

        (data_dir / PASSWORD_FILE).write_text("not-the-password")
        started = time.monotonic()
        with pytest.raises(ConfigurationError, match=f"refused the password.*delete {data_dir}"):
            LocalRecord(data_dir, settings).start()
        assert time.monotonic() - started < 20
    finally:
        shutil.rmtree(cluster_home, ignore_errors=True)


def test_a_cluster_inside_the_data_dir_whose_password_file_is_gone_is_refused_not_removed(
    base_dir: Path, settings: Settings
) -> None:
    data_dir = data_dir_of(base_dir, mode=0o755)  # reachable: the cluster lives inside it, for root too
    assert local_data_dir(data_dir) == data_dir / "postgres"
    run_record(data_dir, settings, "CREATE TABLE kept_from_before ()")
    (data_dir / PASSWORD_FILE).unlink()
    with pytest.raises(ConfigurationError, match=f"{PASSWORD_FILE} is gone.*restore the file"):
        LocalRecord(data_dir, settings)
    assert (data_dir / "postgres" / "pgdata" / "PG_VERSION").exists()
