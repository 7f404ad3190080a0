"""PostgreSQL fixtures: one real server per test session, one migrated template database, and a fresh
copy of it per test (CREATE DATABASE ... TEMPLATE), so tests never see each other's rows."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from jobqueue.embedded.postgres_server import PostgresServer
from jobqueue.record.db import open_pool
from jobqueue.record.migrate import migrate

TEMPLATE = "jq_migrated_template"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    # Not under pytest's tmp dir: when tests run as root the server runs as an unprivileged user, who
    # cannot enter pytest's 0700 directories.
    base = Path(tempfile.mkdtemp(prefix="jobqueue-test-pg-"))
    os.chmod(base, 0o755)
    server = PostgresServer(base, durable=False).start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_template(postgres_server: PostgresServer) -> str:
    migrate(postgres_server.create_database(TEMPLATE))
    return TEMPLATE


@pytest.fixture
def database_url(postgres_server: PostgresServer, migrated_template: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name, template=migrated_template)
    yield url
    if postgres_server.running:
        postgres_server.drop_database(name)


@pytest.fixture
def pg_pool(database_url: str) -> Iterator[ConnectionPool]:
    pool = open_pool(database_url, min_size=1, max_size=4, timeout=2.0)
    pool.wait(10)
    yield pool
    pool.close()
