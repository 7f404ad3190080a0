"""Start a real PostgreSQL server as a child process: the system server binaries if present, else the ones
shipped inside the ``pgserver`` package, run as a normal TCP server on 127.0.0.1.

PostgreSQL refuses to run as root, so when this process is root the server runs as an unprivileged
system user (``postgres`` when it exists, else ``nobody``) that owns the data directory.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from jobqueue.embedded.redis_server import free_port
from jobqueue.errors import ConfigurationError

SUPERUSER = "postgres"


def _version_key(path: str) -> tuple[int, ...]:
    parts = Path(path).parts
    return tuple(int(p) for p in parts if p.isdigit())


def find_postgres_bin_dir() -> Path:
    """Directory holding ``initdb`` and ``postgres``: the newest system install, else pgserver's.

    ConfigurationError says what to install when there is neither.
    """
    candidates: list[Path] = []
    on_path = shutil.which("postgres") or shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    # Debian and Ubuntu keep the server binaries off PATH, one directory per major version.
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key)[::-1]]
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    raise ConfigurationError(
        "no PostgreSQL server binaries found: apt-get install postgresql, or pip install pgserver"
    )


def _run_as_user() -> pwd.struct_passwd | None:
    """The unprivileged account the server runs as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ConfigurationError("running as root and neither a 'postgres' nor a 'nobody' user exists")


def world_searchable(path: Path) -> bool:
    """True when every existing directory above ``path`` lets any user through (o+x)."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in path.resolve().parents if p.exists())


def binaries_for_user(bin_dir: Path, copy_root: Path) -> Path:
    """``bin_dir``, or a copy of its install in ``copy_root`` when the server's user could not run it.

    As root the server runs as another user, who cannot execute pgserver's binaries inside a virtualenv
    under a private directory (a checkout in /root, a ``mktemp -d`` clone). pgserver's install is
    relocatable: ``<package>/pginstall/{bin,lib,share}`` plus the wheel's ``<package>.libs`` beside the
    package, which the binaries find by a path relative to themselves. A copy of both, laid out the same
    way in a reachable place, runs the same server.
    """
    if _run_as_user() is None or world_searchable(bin_dir / "postgres"):
        return bin_dir
    install = bin_dir.resolve().parent
    package = install.parent
    if not ((install / "lib").is_dir() and (install / "share").is_dir()):
        raise ConfigurationError(
            f"{bin_dir} is not reachable by the unprivileged user PostgreSQL runs as, and its install is not "
            "relocatable: install PostgreSQL under a world-searchable path"
        )
    copy = copy_root / "server-binaries"
    stamp = copy / "copied-from"
    if not (stamp.is_file() and stamp.read_text() == str(install)):
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(install, copy / package.name / install.name, symlinks=True)
        wheel_libs = package.parent / f"{package.name}.libs"
        if wheel_libs.is_dir():
            shutil.copytree(wheel_libs, copy / wheel_libs.name, symlinks=True)
        # Made under our umask, which may be private: the server user must traverse it.
        os.chmod(copy, 0o755)  # noqa: S103
        stamp.write_text(str(install))
    return copy / package.name / install.name / "bin"


@dataclass
class PostgresServer:
    """A PostgreSQL server on 127.0.0.1:port whose cluster lives in ``data_dir / "pgdata"``.

    ``durable=False`` turns off fsync and synchronous commit: ten times faster for tests, but a machine
    crash may corrupt the cluster, so only for throw-away data.

    Without ``password`` every local user may connect as the superuser (trust: for tests' throw-away
    clusters). With it, every connection must authenticate with it (scram-sha-256); a cluster made
    earlier with trust is switched over on start.
    """

    data_dir: Path
    port: int = 0
    durable: bool = True
    bin_dir: Path | None = None
    password: str | None = field(default=None, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def cluster_dir(self) -> Path:
        """The PostgreSQL data directory (PGDATA)."""
        return self.data_dir / "pgdata"

    @property
    def log_path(self) -> Path:
        """Server log file."""
        return self.data_dir / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """postgresql:// URL of one database on this server (with the password, when there is one)."""
        auth = f"{SUPERUSER}:{quote(self.password, safe='')}" if self.password else SUPERUSER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def _user_kwargs(self) -> dict[str, int]:
        account = _run_as_user()
        if account is None:
            return {}
        return {"user": account.pw_uid, "group": account.pw_gid}

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        account = _run_as_user()
        if account is None:
            return
        # The server user must reach the cluster: own the data dir and make sure every parent lets it in.
        os.chown(self.data_dir, account.pw_uid, account.pw_gid)
        if not world_searchable(self.data_dir):
            raise ConfigurationError(
                f"a directory above {self.data_dir} is not searchable by user {account.pw_name!r}, who must "
                "run PostgreSQL (PostgreSQL refuses to run as root): choose a data dir under a "
                "world-searchable path"
            )

    def _initdb(self, bin_dir: Path) -> None:
        if (self.cluster_dir / "PG_VERSION").exists():
            return
        cmd = [
            str(bin_dir / "initdb"),
            "-D", str(self.cluster_dir),
            "--username", SUPERUSER,
            "--auth", "scram-sha-256" if self.password else "trust",
            "--encoding", "UTF8",
            "--locale", "C",
        ]  # fmt: skip
        if not self.durable:
            cmd.append("--no-sync")
        pwfile = self.data_dir / "initdb.pwfile"
        if self.password:
            # A file the server user alone can read: initdb takes the password from it, not from argv.
            pwfile.touch(mode=0o600)
            pwfile.write_text(self.password + "\n")
            account = _run_as_user()
            if account is not None:
                os.chown(pwfile, account.pw_uid, account.pw_gid)
            cmd.append(f"--pwfile={pwfile}")
        try:
            done = subprocess.run(cmd, capture_output=True, check=False, **self._user_kwargs())  # type: ignore[call-overload]
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ConfigurationError(f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}")

    def start(self, timeout: float = 30.0) -> PostgresServer:
        """Initialise the cluster if needed, start the server and wait until it accepts connections."""
        if not self.port:
            self.port = free_port()
        self._prepare_dirs()
        bin_dir = binaries_for_user(self.bin_dir or find_postgres_bin_dir(), self.data_dir)
        self._initdb(bin_dir)
        args = [
            str(bin_dir / "postgres"),
            "-D", str(self.cluster_dir),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            # The socket lives in the cluster dir: /var/run/postgresql may not exist or be writable.
            "-c", f"unix_socket_directories={self.cluster_dir}",
            "-c", "shared_buffers=64MB",
            "-c", "max_connections=200",
        ]  # fmt: skip
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        log = self.log_path.open("ab")
        try:
            # Its own session: a Ctrl-C in the terminal reaches the local stack, which then stops the
            # recorder before the database instead of the database vanishing under it.
            self.process = subprocess.Popen(  # type: ignore[call-overload]
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._user_kwargs()
            )
        finally:
            log.close()
        self._wait_ready(timeout)
        if self.password:
            self._require_password()
        return self

    def _require_password(self) -> None:
        """Switch a cluster made with trust authentication to scram-sha-256 with ``password``."""
        hba = self.cluster_dir / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        trusting = [
            i for i, line in enumerate(lines) if not line.lstrip().startswith("#") and " trust" in line
        ]
        if not trusting:
            return
        # Trust still admits us (whatever password the URL carries): set the password, then require it.
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(SUPERUSER), sql.Literal(self.password)
                )
            )
            for i in trusting:
                lines[i] = lines[i].replace(" trust", " scram-sha-256")
            hba.write_text("\n".join(lines) + "\n")
            conn.execute("SELECT pg_reload_conf()")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                assert self.process is not None
                if "password authentication failed" in str(exc):
                    # Up, and refusing our password: waiting cannot change that.
                    self.stop()
                    raise ConfigurationError(
                        f"postgres in {self.cluster_dir} refused the password it was given (the cluster "
                        "was made with another one)"
                    ) from None
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log_path.read_text(errors="replace")[-2000:]
                    self.stop()
                    raise ConfigurationError(f"postgres did not start: {tail}") from None
                time.sleep(0.05)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create a database (optionally as a copy of ``template``) unless it exists; returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if template:
                    query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
                conn.execute(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting its sessions first."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
