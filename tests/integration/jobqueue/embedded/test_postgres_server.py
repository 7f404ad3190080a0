"""The embedded PostgreSQL: system binaries or pgserver's, restart keeps data."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from jobqueue.embedded.postgres_server import PostgresServer, find_postgres_bin_dir
from jobqueue.record.migrate import applied_versions, migrate

pytestmark = pytest.mark.timeout(120)


def bin_dirs() -> list[Path]:
    dirs = [find_postgres_bin_dir()]
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        dirs.append(Path(spec.origin).parent / "pginstall" / "bin")
    return list(dict.fromkeys(dirs))


@pytest.mark.parametrize(
    "bin_dir", bin_dirs(), ids=lambda p: "pgserver" if "pgserver" in str(p) else "system"
)
def test_server_starts_migrates_and_keeps_data_across_a_restart(bin_dir: Path, base_dir: Path) -> None:
    server = PostgresServer(base_dir, durable=True, bin_dir=bin_dir).start()
    try:
        url = server.create_database("record")
        migrate(url)
        server.stop()
        assert not server.running
        server.start()
        assert applied_versions(url) != []
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT current_setting('listen_addresses')").fetchone()
        assert row == ("127.0.0.1",)
    finally:
        server.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another user")
def test_binaries_in_a_private_directory_are_copied_where_the_server_user_can_run_them(
    base_dir: Path,
) -> None:
    # As root, a checkout in a 0700 directory (/root, mktemp -d) holds pgserver inside its virtualenv,
    # where the unprivileged server user cannot execute initdb.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.origin:
        if os.environ.get("CI") == "true":
            pytest.fail("pgserver must be installed in CI")
        pytest.skip("LOUD SKIP: pgserver is not installed, nothing relocatable to copy")
    private = Path(tempfile.mkdtemp(prefix="jobqueue-test-private-"))
    try:
        package = Path(spec.origin).parent
        site_packages = private / "venv" / "site-packages"
        shutil.copytree(package / "pginstall", site_packages / "pgserver" / "pginstall", symlinks=True)
        shutil.copytree(package.parent / "pgserver.libs", site_packages / "pgserver.libs", symlinks=True)
        os.chmod(private, 0o700)
        bin_dir = site_packages / "pgserver" / "pginstall" / "bin"
        server = PostgresServer(base_dir / "pg", durable=False, bin_dir=bin_dir)
        try:
            server.start()
            with psycopg.connect(server.url()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            server.stop()
        assert (base_dir / "pg" / "server-binaries" / "pgserver" / "pginstall" / "bin" / "postgres").is_file()
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_a_password_is_required_when_set_also_on_a_cluster_made_with_trust(base_dir: Path) -> None:
    # `jobqueue up` clusters from before passwords were trust: the next start must switch them over.
    server = PostgresServer(base_dir, durable=False).start()
    server.stop()
    server = PostgresServer(base_dir, durable=False, password="pw with spaces/and:colons").start()
    try:
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{server.port}/postgres", connect_timeout=5)
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(
                f"postgresql://postgres:wrong@127.0.0.1:{server.port}/postgres", connect_timeout=5
            )
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    fresh = PostgresServer(base_dir / "fresh", durable=False, password="another").start()
    try:
        hba = (fresh.cluster_dir / "pg_hba.conf").read_text()
        assert " trust" not in "\n".join(line for line in hba.splitlines() if not line.startswith("#"))
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{fresh.port}/postgres", connect_timeout=5)
        with psycopg.connect(fresh.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        fresh.stop()
